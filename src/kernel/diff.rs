//! What changed between two kernels' ABIs, symbol by symbol: added, removed, CRC changed,
//! GPL-only changed, namespace changed.

use super::abi::{KernelAbi, KernelSymbol};
use serde::Serialize;

#[derive(Debug, Default, Serialize)]
pub struct AbiDiff {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub crc_changed: Vec<(String, Option<u32>, Option<u32>)>,
    pub gpl_changed: Vec<(String, String, String)>,
    pub namespace_changed: Vec<(String, String, String)>,
}

/// Compare two ABIs symbol by symbol (sorted by name).
pub fn diff(old: &KernelAbi, new: &KernelAbi) -> AbiDiff {
    let mut d = AbiDiff::default();
    for s in new.sorted() {
        match old.get(&s.name) {
            None => d.added.push(s.name.clone()),
            Some(o) => compare(o, s, &mut d),
        }
    }
    for s in old.sorted() {
        if new.get(&s.name).is_none() {
            d.removed.push(s.name.clone());
        }
    }
    d
}

fn compare(o: &KernelSymbol, n: &KernelSymbol, d: &mut AbiDiff) {
    if o.crc != n.crc {
        d.crc_changed.push((n.name.clone(), o.crc, n.crc));
    }
    if o.kind != n.kind {
        d.gpl_changed.push((
            n.name.clone(),
            o.kind.as_str().into(),
            n.kind.as_str().into(),
        ));
    }
    if o.namespace != n.namespace {
        d.namespace_changed
            .push((n.name.clone(), o.namespace.clone(), n.namespace.clone()));
    }
}
