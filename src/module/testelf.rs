//! A minimal ELF relocatable-object writer for unit tests of layouts no real module at hand
//! has (extended modversions, Ubuntu's variable-length `__versions`, big-endian 32-bit).

pub struct Sec<'a> {
    pub name: &'a str,
    pub alloc: bool,
    pub data: Vec<u8>,
}

/// Build an ELF object with the given PROGBITS sections, a `.shstrtab` and an empty
/// `.symtab`/`.strtab` pair.
pub fn build(bits: u8, big_endian: bool, secs: &[Sec]) -> Vec<u8> {
    let w = |v: u64, n: usize| -> Vec<u8> {
        let b = v.to_le_bytes()[..n].to_vec();
        if big_endian {
            b.into_iter().rev().collect()
        } else {
            b
        }
    };
    let (ehsize, shentsize, addr) = if bits == 64 {
        (64usize, 64usize, 8usize)
    } else {
        (52, 40, 4)
    };
    // section names
    let mut shstr = vec![0u8];
    let mut name_off = Vec::new();
    let names: Vec<&str> = secs
        .iter()
        .map(|s| s.name)
        .chain([".shstrtab", ".symtab", ".strtab"])
        .collect();
    for n in &names {
        name_off.push(shstr.len() as u64);
        shstr.extend_from_slice(n.as_bytes());
        shstr.push(0);
    }
    let symtab = vec![0u8; if bits == 64 { 24 } else { 16 }]; // the null symbol
    let strtab = vec![0u8];
    let mut body = Vec::new();
    let mut placed = Vec::new(); // (offset, size)
    for d in secs
        .iter()
        .map(|s| &s.data)
        .chain([&shstr, &symtab, &strtab])
    {
        while (ehsize + body.len()) % 8 != 0 {
            body.push(0);
        }
        placed.push(((ehsize + body.len()) as u64, d.len() as u64));
        body.extend_from_slice(d);
    }
    while (ehsize + body.len()) % 8 != 0 {
        body.push(0);
    }
    let shoff = (ehsize + body.len()) as u64;
    let nsec = names.len() + 1;
    let mut out = Vec::new();
    out.extend_from_slice(b"\x7fELF");
    out.push(if bits == 64 { 2 } else { 1 });
    out.push(if big_endian { 2 } else { 1 });
    out.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    out.extend(w(1, 2)); // ET_REL
    out.extend(w(62, 2)); // machine: any
    out.extend(w(1, 4));
    out.extend(w(0, addr)); // entry
    out.extend(w(0, addr)); // phoff
    out.extend(w(shoff, addr));
    out.extend(w(0, 4)); // flags
    out.extend(w(ehsize as u64, 2));
    out.extend(w(0, 2));
    out.extend(w(0, 2));
    out.extend(w(shentsize as u64, 2));
    out.extend(w(nsec as u64, 2));
    out.extend(w(secs.len() as u64 + 1, 2)); // shstrndx
    assert_eq!(out.len(), ehsize);
    out.extend_from_slice(&body);
    out.extend(vec![0u8; shentsize]); // null section
    let symtab_idx = secs.len() as u64 + 2;
    for (i, ((off, size), name)) in placed.iter().zip(&name_off).enumerate() {
        let (ty, flags, link, entsize) = match i {
            i if i < secs.len() => (1u64, if secs[i].alloc { 2u64 } else { 0 }, 0, 0),
            i if i == secs.len() => (3, 0, 0, 0), // .shstrtab
            i if i == secs.len() + 1 => (2, 0, symtab_idx + 1, symtab.len() as u64), // .symtab
            _ => (3, 0, 0, 0),                    // .strtab
        };
        out.extend(w(*name, 4));
        out.extend(w(ty, 4));
        out.extend(w(flags, addr));
        out.extend(w(0, addr)); // addr
        out.extend(w(*off, addr));
        out.extend(w(*size, addr));
        out.extend(w(link, 4));
        out.extend(w(0, 4)); // info
        out.extend(w(1, addr)); // align
        out.extend(w(entsize, addr));
    }
    out
}
