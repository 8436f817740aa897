//! The neutral form a spec arrives in, and typed reads of its keys.
//!
//! The glue converts a host object (a Python dict) into a [`SpecMap`] without knowing any kind:
//! plain values become [`SpecValue`]s, and every other object an opaque `Handle(H)` that only the
//! glue can use (a file object, a writer, an iterator of batches). [`Fields`] then reads the keys
//! a kind takes, each with the type it must have, and names the key and the kind when one is wrong.

use std::collections::BTreeMap;
use std::fmt;

/// One value of a spec. A null is the same as a missing key: the key's default applies.
#[derive(Debug, Clone, PartialEq)]
pub enum SpecValue<H> {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<SpecValue<H>>),
    /// An object of the host that the executor passes back to the glue untouched.
    Handle(H),
}

impl<H> SpecValue<H> {
    /// What the value is, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            SpecValue::Null => "null",
            SpecValue::Bool(_) => "a boolean",
            SpecValue::Int(_) => "an integer",
            SpecValue::Float(_) => "a float",
            SpecValue::Str(_) => "a string",
            SpecValue::List(_) => "a list",
            SpecValue::Handle(_) => "an object",
        }
    }
}

/// A spec in its neutral form: key to value.
pub type SpecMap<H> = BTreeMap<String, SpecValue<H>>;

/// A spec that cannot be run: an unknown kind, or a key missing, mistyped or out of range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError(pub String);

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SpecError {}

/// The keys of one spec, read (and taken out) one at a time. `what` names the spec in errors,
/// such as `csv source`. Keys a kind does not take are ignored, as a dict's extra keys are.
pub struct Fields<H> {
    what: String,
    map: SpecMap<H>,
}

impl<H> Fields<H> {
    pub fn new(what: String, map: SpecMap<H>) -> Fields<H> {
        Fields { what, map }
    }

    /// The keys not read yet.
    pub fn into_map(self) -> SpecMap<H> {
        self.map
    }

    /// An error about `key` of this spec.
    pub fn error(&self, key: &str, problem: &str) -> SpecError {
        SpecError(format!("the {} spec's {key:?} {problem}", self.what))
    }

    /// An error about the value of `key`, which has the right type but is not one the kind takes.
    pub fn invalid(&self, key: &str, message: &str) -> SpecError {
        SpecError(format!("the {} spec's {key:?}: {message}", self.what))
    }

    fn take(&mut self, key: &str) -> Option<SpecValue<H>> {
        match self.map.remove(key) {
            None | Some(SpecValue::Null) => None,
            Some(value) => Some(value),
        }
    }

    fn mistyped(&self, key: &str, expected: &str, found: &SpecValue<H>) -> SpecError {
        self.error(key, &format!("must be {expected}, got {}", found.type_name()))
    }

    /// A key that must be present (and not null).
    pub fn required<T>(&self, key: &str, value: Option<T>, expected: &str) -> Result<T, SpecError> {
        value.ok_or_else(|| self.error(key, &format!("is missing: give {expected}")))
    }

    pub fn string(&mut self, key: &str) -> Result<Option<String>, SpecError> {
        match self.take(key) {
            None => Ok(None),
            Some(SpecValue::Str(text)) => Ok(Some(text)),
            Some(other) => Err(self.mistyped(key, "a string", &other)),
        }
    }

    pub fn boolean(&mut self, key: &str) -> Result<Option<bool>, SpecError> {
        match self.take(key) {
            None => Ok(None),
            Some(SpecValue::Bool(flag)) => Ok(Some(flag)),
            Some(other) => Err(self.mistyped(key, "a boolean", &other)),
        }
    }

    /// An integer >= 0.
    pub fn count(&mut self, key: &str) -> Result<Option<u64>, SpecError> {
        match self.take(key) {
            None => Ok(None),
            Some(value) => self.to_count(key, &value).map(Some),
        }
    }

    fn to_count(&self, key: &str, value: &SpecValue<H>) -> Result<u64, SpecError> {
        match value {
            SpecValue::Int(n) => u64::try_from(*n).map_err(|_| self.error(key, &format!("must be >= 0, got {n}"))),
            other => Err(self.mistyped(key, "an integer", other)),
        }
    }

    /// An integer >= 0 that counts things in memory (rows of a group, spaces of an indent).
    pub fn size(&mut self, key: &str) -> Result<Option<usize>, SpecError> {
        match self.count(key)? {
            None => Ok(None),
            Some(n) => usize::try_from(n).map(Some).map_err(|_| self.error(key, &format!("is too large: {n}"))),
        }
    }

    pub fn strings(&mut self, key: &str) -> Result<Option<Vec<String>>, SpecError> {
        match self.take(key) {
            None => Ok(None),
            Some(SpecValue::List(items)) => items
                .into_iter()
                .map(|item| match item {
                    SpecValue::Str(text) => Ok(text),
                    other => Err(self.mistyped(key, "a list of strings", &other)),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(other) => Err(self.mistyped(key, "a list of strings", &other)),
        }
    }

    /// Two integers >= 0, `(start, end)`.
    pub fn pair(&mut self, key: &str) -> Result<Option<(u64, u64)>, SpecError> {
        match self.take(key) {
            None => Ok(None),
            Some(SpecValue::List(items)) if items.len() == 2 => {
                Ok(Some((self.to_count(key, &items[0])?, self.to_count(key, &items[1])?)))
            }
            Some(other) => Err(self.mistyped(key, "a pair of integers (start, end)", &other)),
        }
    }

    /// An object of the host, passed back to the glue.
    pub fn handle(&mut self, key: &str) -> Result<Option<H>, SpecError> {
        match self.take(key) {
            None => Ok(None),
            Some(SpecValue::Handle(handle)) => Ok(Some(handle)),
            Some(other) => Err(self.mistyped(key, "an object", &other)),
        }
    }

    /// A single ASCII character, given as a one-character string.
    pub fn byte(&mut self, key: &str, default: u8) -> Result<u8, SpecError> {
        match self.string(key)? {
            None => Ok(default),
            Some(text) => single_byte(key, &text),
        }
    }
}

/// `text` as its one ASCII byte (a CSV delimiter or quote character).
pub fn single_byte(key: &str, text: &str) -> Result<u8, SpecError> {
    match text.as_bytes() {
        [b] if b.is_ascii() => Ok(*b),
        _ => Err(SpecError(format!("{key} must be a single ASCII character, got {text:?}"))),
    }
}
