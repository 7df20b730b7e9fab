//! What both backends share about the plugins' key-value namespaces: the shape of one call's
//! writes and how they change a namespace's size (the quota counts keys and values).

/// One plugin call's writes, applied all or none: `(key, Some(value))` sets, `(key, None)`
/// deletes.
pub type KvWrites<'a> = &'a [(&'a str, Option<&'a [u8]>)];

/// The size change (bytes) `writes` make to a namespace whose current value sizes `old`
/// returns: a key and its value count; a delete frees both.
pub(crate) fn size_delta(writes: KvWrites<'_>, mut old: impl FnMut(&str) -> Option<usize>) -> i64 {
    let mut delta = 0i64;
    for (key, value) in writes {
        let before = old(key).map_or(0, |len| (len + key.len()) as i64);
        let after = value.map_or(0, |value| (value.len() + key.len()) as i64);
        delta += after - before;
    }
    delta
}
