//! `section!`: a config section whose every field carries its default beside it.

/// Declares a config section: the struct (serde, unknown keys refused, missing keys defaulted) and
/// its `Default`, from `field: Type = default` entries. Field order is the order `to_toml` writes.
macro_rules! section {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[$fmeta:meta])* pub $field:ident : $ty:ty = $default:expr ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
        #[serde(deny_unknown_fields, default)]
        pub struct $name {
            $( $(#[$fmeta])* pub $field: $ty, )*
        }

        impl Default for $name {
            fn default() -> Self {
                Self { $( $field: $default, )* }
            }
        }
    };
}

pub(crate) use section;

/// `[(key, value)]` of some fields of section `s`, each key `section.field` spelled from the
/// field's own name (so an error can never name a key that does not exist).
macro_rules! fields {
    ($s:expr, $section:literal: $($f:ident),+ $(,)?) => {
        [$( (concat!($section, ".", stringify!($f)), $s.$f) ),+]
    };
}

pub(crate) use fields;

/// Fails naming the first key of `fields` that is zero.
pub(crate) fn at_least_one(fields: &[(&str, usize)]) -> anyhow::Result<()> {
    match fields.iter().find(|(_, v)| *v == 0) {
        Some((k, _)) => anyhow::bail!("`{k}` must be at least 1"),
        None => Ok(()),
    }
}

/// Fails naming the first key of `fields` above `max`: sizes that allocate, where a typo must be
/// an error, not an attempt at terabytes.
pub(crate) fn at_most(fields: &[(&str, usize)], max: usize) -> anyhow::Result<()> {
    match fields.iter().find(|(_, v)| *v > max) {
        Some((k, v)) => anyhow::bail!("`{k}` = {v} is more than Keel supports ({max})"),
        None => Ok(()),
    }
}

/// Fails naming the first key of `fields` that is negative, NaN or infinite.
pub(crate) fn non_negative(fields: &[(&str, f64)]) -> anyhow::Result<()> {
    match fields.iter().find(|(_, v)| !(*v >= 0.0 && v.is_finite())) {
        Some((k, v)) => anyhow::bail!("`{k}` must be ≥ 0, got {v}"),
        None => Ok(()),
    }
}
