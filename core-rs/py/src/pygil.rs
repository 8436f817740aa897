//! Taking the GIL from a run's threads, safely while Python exits.
//!
//! A pipe started with `Pipe.start()` runs in a daemon thread. If the interpreter finalises
//! while it runs (the Python side stops and joins running pipes at exit first, but a pipe stuck
//! in native code can outlive that), a thread that takes the GIL (or takes it back after
//! `allow_threads`) is ended by CPython with `pthread_exit`, which unwinds through Rust frames
//! and aborts the process ("Fatal Python error"). Once finalisation has begun, a run's threads
//! therefore never touch Python again: they park until the process exits. PyO3 does the same
//! when `PyGILState_Ensure` itself ends the thread; the calls below do it when the Python code a
//! thread runs (a transform that does not stop, a blocking file object) is ended that way.

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyTuple;
use std::os::raw::c_int;

// The entry points through which a run calls Python code that may block (a transform, a
// Python source or writer, a file object). Declared "C-unwind": CPython < 3.14 ends a thread
// that waits for the GIL while Python exits with `pthread_exit`, a forced unwind out of them.
extern "C-unwind" {
    #[link_name = "PyObject_Call"]
    fn object_call(
        callable: *mut ffi::PyObject,
        args: *mut ffi::PyObject,
        kwargs: *mut ffi::PyObject,
    ) -> *mut ffi::PyObject;
    #[link_name = "PyIter_Next"]
    fn iter_next(iterator: *mut ffi::PyObject) -> *mut ffi::PyObject;
    #[link_name = "PyErr_CheckSignals"]
    fn err_check_signals() -> c_int;
}

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
/// that unwind go on would run destructors that touch Python without the GIL (a segfault) and
/// release a GIL this thread does not hold ("Fatal Python error: PyGILState_Release"). A parked
/// thread holds no GIL and ends with the process.
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

/// `Python::with_gil`, except that a thread never takes the GIL once Python is exiting.
pub fn with_gil<F, R>(f: F) -> R
where
    F: for<'py> FnOnce(Python<'py>) -> R,
{
    park_if_python_exiting();
    Python::with_gil(f)
}

/// `callable(*args)`. If Python ends this thread meanwhile (it exits while the call waits for
/// the GIL), the thread parks here: no Rust destructor runs without the GIL. The frame holds
/// nothing else to drop, so the guard is the first destructor the unwind meets.
pub fn call<'py>(callable: &Bound<'py, PyAny>, args: &Bound<'py, PyTuple>) -> PyResult<Bound<'py, PyAny>> {
    let py = callable.py();
    let guard = ParkOnForcedUnwind;
    // SAFETY: both pointers are live objects (borrowed for the call); the GIL is held.
    let result = unsafe { object_call(callable.as_ptr(), args.as_ptr(), std::ptr::null_mut()) };
    std::mem::forget(guard);
    // SAFETY: PyObject_Call returns a new reference, or NULL with an exception set.
    unsafe { Bound::from_owned_ptr_or_err(py, result) }
}

/// `obj.name(*args)`, guarded like [`call`].
pub fn call_method<'py>(
    obj: &Bound<'py, PyAny>,
    name: &str,
    args: &Bound<'py, PyTuple>,
) -> PyResult<Bound<'py, PyAny>> {
    call(&obj.getattr(name)?, args)
}

/// `next(iterator)`, guarded like [`call`]; None at the end.
pub fn next<'py>(iterator: &Bound<'py, PyAny>) -> PyResult<Option<Bound<'py, PyAny>>> {
    let py = iterator.py();
    let guard = ParkOnForcedUnwind;
    // SAFETY: a live iterator, the GIL held.
    let item = unsafe { iter_next(iterator.as_ptr()) };
    std::mem::forget(guard);
    if item.is_null() {
        return match PyErr::take(py) {
            Some(err) => Err(err),
            None => Ok(None),
        };
    }
    // SAFETY: PyIter_Next returns a new reference.
    Ok(Some(unsafe { Bound::from_owned_ptr(py, item) }))
}

/// Run the signal handlers (Ctrl-C) now, guarded like [`call`].
pub fn check_signals(py: Python<'_>) -> PyResult<()> {
    let guard = ParkOnForcedUnwind;
    // SAFETY: the GIL is held.
    let status = unsafe { err_check_signals() };
    std::mem::forget(guard);
    if status == -1 {
        return Err(PyErr::fetch(py));
    }
    Ok(())
}
