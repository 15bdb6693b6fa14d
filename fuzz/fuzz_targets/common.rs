//! Shared by the module targets: walk everything a successful parse produced, the way the
//! `kabi info` / `kabi info --json` / `kabi modversions` paths would.

use kabi::Module;
use kabi::module::show::{Shown, records, render};
use kabi::module::{ExtVersions, Trailer, Versions};
use std::hint::black_box;

pub fn exercise(m: &Module) {
    let shown = Shown {
        filename: Some("/fuzz/input.ko".into()),
        name: m.name.clone(),
        records: records(m),
    };
    let mut out = Vec::new();
    render(&shown, None, b'\n', &mut out);
    render(&shown, None, 0, &mut out);
    render(&shown, Some("parm"), b'\n', &mut out);
    render(&shown, Some("vermagic"), 0, &mut out);
    let builtin = Shown {
        filename: None,
        ..shown
    };
    render(&builtin, Some("name"), b'\n', &mut out);
    black_box(&out);

    for e in &m.exports {
        black_box((
            &e.name,
            e.crc,
            e.kind.as_str(),
            e.kind.is_gpl_only(),
            &e.namespace,
        ));
    }
    if let Versions::Present { entries, .. } = &m.versions {
        for v in entries {
            black_box((&v.name, v.crc));
        }
    }
    if let ExtVersions::Present { entries } = &m.ext_versions {
        for v in entries {
            black_box((&v.name, v.crc));
        }
    }
    for u in &m.undefined {
        black_box((&u.name, u.weak));
    }
    black_box((m.vermagic(), m.modinfo_first("depends"), m.elf.ptr_size()));
    if let Trailer::Signed(sig) = &m.signature {
        let _ = black_box((sig.info(), sig.kernel_form_check()));
    }
    // `kabi info --json` (its trailer serializer calls `Signature::info` too).
    black_box(serde_json::to_vec(m).expect("a parsed module always serializes"));
}

/// The sections-only parse (what `kabi info` and `modversions` use) must agree with the full
/// parse on everything it fills in, and leave the symbol-derived lists empty.
pub fn check_sections(full: &Module, sections: &Module) {
    assert_eq!(full.name, sections.name);
    assert_eq!(full.image_size, sections.image_size);
    assert_eq!(full.modinfo, sections.modinfo);
    assert_eq!(full.versions, sections.versions);
    assert_eq!(full.ext_versions, sections.ext_versions);
    assert_eq!(full.this_module_size, sections.this_module_size);
    assert_eq!(full.signature, sections.signature);
    assert!(sections.exports.is_empty() && sections.undefined.is_empty());
}
