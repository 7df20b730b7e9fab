//! ACME's state in the `acme` tree: kind (one byte), id → value.

use super::SledStore;
use crate::{AcmeKind, StoreError};

fn key(kind: AcmeKind, id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(1 + id.len());
    key.push(kind.code());
    key.extend_from_slice(id.as_bytes());
    key
}

impl SledStore {
    /// See [`crate::Store::acme_get`].
    pub fn acme_get(&self, kind: AcmeKind, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.inner()?.acme.get(key(kind, id))?.map(|v| v.to_vec()))
    }

    /// See [`crate::Store::acme_insert`]: durable before it answers.
    pub async fn acme_insert(
        &self,
        kind: AcmeKind,
        id: &str,
        value: &[u8],
    ) -> Result<bool, StoreError> {
        let inner = self.inner()?;
        let swapped = inner
            .acme
            .compare_and_swap(key(kind, id), None::<&[u8]>, Some(value));
        let inserted = self.watch(swapped.map_err(StoreError::from))?.is_ok();
        if inserted && kind != AcmeKind::RedeemedNonce {
            self.watch(inner.commit.durable().await)?;
        }
        Ok(inserted)
    }

    /// See [`crate::Store::acme_replace`]: durable before it answers.
    pub async fn acme_replace(
        &self,
        kind: AcmeKind,
        id: &str,
        expected: &[u8],
        value: &[u8],
    ) -> Result<bool, StoreError> {
        let inner = self.inner()?;
        let swapped = inner
            .acme
            .compare_and_swap(key(kind, id), Some(expected), Some(value));
        let replaced = self.watch(swapped.map_err(StoreError::from))?.is_ok();
        if replaced {
            self.watch(inner.commit.durable().await)?;
        }
        Ok(replaced)
    }

    /// See [`crate::Store::acme_scan`].
    pub fn acme_scan(
        &self,
        kind: AcmeKind,
        prefix: &str,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let inner = self.inner()?;
        let mut found = Vec::new();
        for item in inner.acme.scan_prefix(key(kind, prefix)) {
            let (key, value) = item?;
            found.push((
                String::from_utf8_lossy(&key[1..]).into_owned(),
                value.to_vec(),
            ));
        }
        Ok(found)
    }

    /// See [`crate::Store::acme_remove_below`].
    pub fn acme_remove_below(&self, kind: AcmeKind, bound: &str) -> Result<u64, StoreError> {
        let inner = self.inner()?;
        let mut removed = 0;
        for item in inner.acme.range(key(kind, "")..key(kind, bound)) {
            let (key, _) = item?;
            self.watch(inner.acme.remove(key).map_err(StoreError::from))?;
            removed += 1;
        }
        Ok(removed)
    }

    /// Every ACME entry, by kind and id (copy and snapshots).
    pub(crate) fn acme_entries(&self) -> Result<Vec<(AcmeKind, String, Vec<u8>)>, StoreError> {
        let inner = self.inner()?;
        let mut entries = Vec::new();
        for item in inner.acme.iter() {
            let (key, value) = item?;
            let kind = key
                .first()
                .and_then(|code| AcmeKind::from_code(*code))
                .ok_or_else(|| StoreError::Corrupt {
                    key: format!("acme {}", hex::encode(&key)),
                    reason: "no ACME kind has this number".into(),
                })?;
            entries.push((
                kind,
                String::from_utf8_lossy(&key[1..]).into_owned(),
                value.to_vec(),
            ));
        }
        Ok(entries)
    }
}
