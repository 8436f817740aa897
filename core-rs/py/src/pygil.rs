//! Taking the GIL from a run's threads, safely while Python exits.
//!
//! A pipe started with `Pipe.start()` runs in a daemon thread. If the interpreter finalises
//! while it runs (the Python side stops and joins running pipes at exit first, but a pipe stuck
//! in native code can outlive that), a thread that takes the GIL (or takes it back after
//! `allow_threads`) is ended by CPython with `pthread_exit`, which unwinds through Rust frames
//! and aborts the process ("Fatal Python error"). Once finalisation has begun, a run's threads
//! therefore never touch Python again: they park until the process exits. (PyO3 does the same
//! when `PyGILState_Ensure` itself ends the thread; here it is also done when Python code the
//! thread runs is ended that way.)

use pyo3::ffi;
use pyo3::prelude::*;

/// True once the interpreter started finalising (CPython clears "initialized" at the same
/// moment it marks itself finalising, after the atexit hooks ran).
fn python_is_exiting() -> bool {
    // SAFETY: Py_IsInitialized only reads a flag of the runtime; it is safe without the GIL.
    unsafe { ffi::Py_IsInitialized() == 0 }
}

/// Park this thread for good if Python is exiting; return at once otherwise.
pub fn park_if_python_exiting() {
    if python_is_exiting() {
        loop {
            std::thread::park();
        }
    }
}

/// Parks the thread when dropped by an unwind that is not a Rust panic: CPython ending the
/// thread (`pthread_exit`) while the Python code it called waited for the GIL at exit. Letting
/// that unwind go on would release a GIL this thread does not hold ("Fatal Python error:
/// PyGILState_Release"). A parked thread holds no GIL and ends with the process.
struct ParkOnForcedUnwind;

impl Drop for ParkOnForcedUnwind {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            loop {
                std::thread::park();
            }
        }
    }
}

/// `Python::with_gil`, except that a thread never takes the GIL once Python is exiting, and a
/// thread that Python ends during its exit parks instead of unwinding through Rust.
pub fn with_gil<F, R>(f: F) -> R
where
    F: for<'py> FnOnce(Python<'py>) -> R,
{
    park_if_python_exiting();
    Python::with_gil(|py| {
        let guard = ParkOnForcedUnwind;
        let result = f(py);
        std::mem::forget(guard);
        result
    })
}
