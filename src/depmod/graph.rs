//! depmod's calculation (kmod 30 tools/depmod.c): the module array and its order, the
//! symbol table (the last provider wins), each module's dependencies, their topological
//! order, and the cycles when there is none.

use super::order::{MODULE_BUCKETS, SYMBOL_BUCKETS, hash_order_key};
use super::scan::Record;
use rustc_hash::FxHashMap;
use std::sync::Arc;

/// One module file chosen for the indexes.
#[derive(Debug, Clone)]
pub struct ModuleIn {
    /// kmod's module name: the file name up to its first `.`, `-` as `_`.
    pub name: String,
    /// The full path as depmod forms it (`<dirname>/<rel>` or an external path).
    pub path: String,
    /// The path relative to the module directory, when the file is below it.
    pub rel: Option<String>,
    pub record: Arc<Record>,
}

impl ModuleIn {
    /// The path written into `modules.dep`: relative when possible.
    pub fn dep_path(&self) -> &str {
        self.rel.as_deref().unwrap_or(&self.path)
    }

    /// kmod's `uncrelpath`: the relative path cut after the module name, plus `.ko`
    /// (`kernel/fs/udf/udf.ko` for `.../udf.ko.xz`), used to match `modules.order`.
    fn uncompressed_rel(&self) -> Option<std::borrow::Cow<'_, str>> {
        let rel = self.rel.as_deref()?;
        let dir = rel.rfind('/').map_or(0, |i| i + 1);
        let end = (dir + self.name.len()).min(rel.len());
        // a plain `name.ko` is its own: no copy
        Some(match rel.get(end..) {
            Some(".ko") => std::borrow::Cow::Borrowed(rel),
            _ => std::borrow::Cow::Owned(format!("{}.ko", &rel[..end])),
        })
    }
}

/// Symbols of the kernel image itself: `-E Module.symvers` (with CRCs, checked) or
/// `-F System.map` (names only).
#[derive(Debug, Clone, Default)]
pub struct KernelSymbols {
    pub symbols: Vec<(String, u64)>,
    /// `-E`: compare CRCs.
    pub check_crcs: bool,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Settings {
    /// `-e`: report unknown symbols and CRC mismatches (only with kernel symbols).
    pub print_unknown: bool,
    /// `-P`: a symbol prefix to ignore.
    pub sym_prefix: Option<u8>,
}

/// A message in kmod's levels, printed as `depmod: LEVEL: text`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Warning(String),
    Error(String),
}

impl std::fmt::Display for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Message::Warning(m) => write!(f, "depmod: WARNING: {m}"),
            Message::Error(m) => write!(f, "depmod: ERROR: {m}"),
        }
    }
}

/// The computed dependency graph, ready to be written out.
#[derive(Debug)]
pub struct Graph {
    /// kmod's module array: hash order, then stably sorted by `modules.order` (shared with
    /// what [`build_with`] runs beside the graph).
    pub mods: Arc<Vec<ModuleIn>>,
    /// Direct dependencies of each module, sorted by [`Graph::dep_sort`].
    pub deps: Vec<Vec<usize>>,
    /// Topological index: a module comes before everything it depends on.
    pub dep_sort: Vec<usize>,
    /// Exported symbols owned by a module, in kmod's hash order: (owner index, index of the
    /// export in the owner's record); see [`Graph::symbols`].
    symbols: Vec<(u32, u32)>,
    /// `-P`: the prefix left out of the symbols' names.
    sym_prefix: Option<u8>,
    pub messages: Vec<Message>,
}

impl Graph {
    /// Exported symbols owned by a module, in kmod's hash order: (name, owner index). The
    /// names are borrowed from the owners' records.
    pub fn symbols(&self) -> impl ExactSizeIterator<Item = (&str, usize)> + '_ {
        self.symbols.iter().map(|&(o, e)| {
            let r = &self.mods[o as usize].record;
            let name = r.exports.get(e as usize).map_or("", |&(n, _)| r.str(n));
            (strip_prefix(self.sym_prefix, name), o as usize)
        })
    }
}

/// The graph has cycles; nothing may be written.
#[derive(Debug)]
pub struct Cycles {
    /// Each cycle as `a -> b -> a`.
    pub cycles: Vec<String>,
    /// How many modules are in a cycle.
    pub count: usize,
    /// Everything reported before and including the cycles, in order.
    pub messages: Vec<Message>,
}

/// kmod's order of the module array: `modules_by_name` iteration order, then a stable sort
/// by `modules.order` position (listed modules first, in file order). `order` is the content
/// of `modules.order`, `None` when there is none; a last line without newline makes kmod
/// give up sorting (with an error).
pub fn order_modules(
    mods: Vec<ModuleIn>,
    order: Option<&[u8]>,
    order_path: &str,
    messages: &mut Vec<Message>,
) -> Vec<ModuleIn> {
    // the array is sorted as indexes (the modules are moved once, at the end): by bucket,
    // then name, then place (a stable sort)
    let mut by_hash: Vec<(u32, u32)> = mods
        .iter()
        .enumerate()
        .map(|(i, m)| (hash_order_key(&m.name, MODULE_BUCKETS).0, i as u32))
        .collect();
    by_hash.sort_unstable_by(|a, b| {
        (a.0.cmp(&b.0))
            .then_with(|| mods[a.1 as usize].name.cmp(&mods[b.1 as usize].name))
            .then(a.1.cmp(&b.1))
    });
    let mut perm: Vec<u32> = by_hash.into_iter().map(|(_, i)| i).collect();
    if let Some(order) = order {
        let lines: Vec<&[u8]> = order.split_inclusive(|&b| b == b'\n').collect();
        if lines.last().is_some_and(|l| !l.ends_with(b"\n")) {
            messages.push(Message::Error(format!(
                "{order_path}:{} corrupted line misses '\\n'",
                lines.len()
            )));
        } else {
            let total = lines.len() as i64 + 1;
            // each module's place in the hash order, by its uncompressed path (a later
            // module with the same path replaces an earlier one, as in kmod's table)
            let mut by_rel: FxHashMap<std::borrow::Cow<str>, usize> = FxHashMap::default();
            by_rel.reserve(mods.len());
            for (at, &i) in perm.iter().enumerate() {
                if let Some(r) = mods[i as usize].uncompressed_rel() {
                    by_rel.insert(r, at);
                }
            }
            let mut sort_idx = vec![1i64; mods.len()];
            for (n, line) in lines.iter().enumerate() {
                let line = String::from_utf8_lossy(&line[..line.len() - 1]);
                if let Some(&at) = by_rel.get(line.as_ref()) {
                    sort_idx[at] = n as i64 + 1 - total;
                }
            }
            drop(by_rel);
            // stable, as glibc's merge-sort qsort is here
            let mut keyed: Vec<(i64, u32)> = sort_idx.into_iter().zip(perm).collect();
            keyed.sort_by_key(|&(k, _)| k);
            perm = keyed.into_iter().map(|(_, i)| i).collect();
        }
    }
    let mut slots: Vec<Option<ModuleIn>> = mods.into_iter().map(Some).collect();
    perm.into_iter()
        .filter_map(|i| slots.get_mut(i as usize).and_then(Option::take))
        .collect()
}

/// depmod's `depmod_load` on modules already in array order.
pub fn build(
    mods: Vec<ModuleIn>,
    kernel: Option<&KernelSymbols>,
    settings: Settings,
    messages: Vec<Message>,
) -> Result<Graph, Cycles> {
    build_with(mods, kernel, settings, messages, |_| (), |_| ())
        .0
        .map(|(g, ())| g)
}

/// [`build`], running `side` on the module array (in its final order) at the same time,
/// and `then` on the graph as soon as it is computed (while `side` may still run).
pub fn build_with<R: Send, T: Send>(
    mods: Vec<ModuleIn>,
    kernel: Option<&KernelSymbols>,
    settings: Settings,
    messages: Vec<Message>,
    side: impl FnOnce(&[ModuleIn]) -> R + Send,
    then: impl FnOnce(&Graph) -> T + Send,
) -> (Result<(Graph, T), Cycles>, R) {
    let mods = Arc::new(mods);
    rayon::join(
        || {
            let (deps, dep_sort, symbols, messages) = compute(&mods, kernel, settings, messages)?;
            let g = Graph {
                mods: Arc::clone(&mods),
                deps,
                dep_sort,
                symbols,
                sym_prefix: settings.sym_prefix,
                messages,
            };
            let t = then(&g);
            Ok((g, t))
        },
        || side(&mods),
    )
}

/// A graph's parts: dependencies, topological index, symbols, messages.
type Parts = (Vec<Vec<usize>>, Vec<usize>, Vec<(u32, u32)>, Vec<Message>);

fn compute(
    mods: &[ModuleIn],
    kernel: Option<&KernelSymbols>,
    settings: Settings,
    mut messages: Vec<Message>,
) -> Result<Parts, Cycles> {
    let table = symbol_table(mods, kernel, settings.sym_prefix);
    let (deps, users) = resolve(mods, &table, kernel, settings, &mut messages);
    let (mut deps, dep_sort) = match sort(deps, &users) {
        Ok(x) => x,
        Err((deps, remaining)) => {
            let (cycles, count) = report_cycles(mods, &deps, &remaining);
            for c in &cycles {
                messages.push(Message::Error(format!("Cycle detected: {c}")));
            }
            messages.push(Message::Error(format!(
                "Found {count} modules in dependency cycles!"
            )));
            return Err(Cycles {
                cycles,
                count,
                messages,
            });
        }
    };
    for d in deps.iter_mut() {
        d.sort_by_key(|&x| dep_sort[x]);
    }
    let symbols = sorted_symbols(table);
    Ok((deps, dep_sort, symbols, messages))
}

/// A symbol without the architecture's prefix (`-P`).
fn strip_prefix(prefix: Option<u8>, name: &str) -> &str {
    match prefix {
        Some(p) if name.as_bytes().first() == Some(&p) => &name[1..],
        _ => name,
    }
}

/// Symbol → (providing module and the export's index in its record, or the kernel; CRC).
type Table<'m> = FxHashMap<&'m str, (Option<(u32, u32)>, u64)>;

/// Symbol → (providing module and the export's index in its record, or the kernel; CRC):
/// the kernel's symbols and the loader's fake ones first, then every module's exports, a
/// later provider replacing an earlier one.
fn symbol_table<'m>(
    mods: &'m [ModuleIn],
    kernel: Option<&'m KernelSymbols>,
    prefix: Option<u8>,
) -> Table<'m> {
    // sized for what goes in: the table's slots are touched all over as it fills, so each
    // slot reserved beyond need costs fresh pages (a reserve of 32,768 more than a tree's
    // 10,000 exports, when no kernel symbols are given, was 400 page faults a run)
    let mut table: Table = FxHashMap::default();
    table.reserve(
        mods.iter().map(|m| m.record.exports.len()).sum::<usize>()
            + kernel.map_or(0, |k| k.symbols.len() + 3),
    );
    if let Some(k) = kernel {
        for (name, crc) in &k.symbols {
            table.insert(strip_prefix(prefix, name), (None, *crc));
        }
        // fake symbols the loader provides (depmod_add_fake_syms)
        table.insert("__this_module", (None, 0));
        table.insert("_GLOBAL_OFFSET_TABLE_", (None, 0));
        table.entry("TOC.").or_insert((None, 0));
    }
    for (i, m) in mods.iter().enumerate() {
        for (e, (name, crc)) in m.record.exports().enumerate() {
            table.insert(
                strip_prefix(prefix, name),
                (Some((i as u32, e as u32)), crc),
            );
        }
    }
    table
}

/// Each module's providers (in first-use order), how many users each module has, and the
/// `-e` warnings, computed in parallel.
fn resolve(
    mods: &[ModuleIn],
    table: &Table,
    kernel: Option<&KernelSymbols>,
    settings: Settings,
    messages: &mut Vec<Message>,
) -> (Vec<Vec<usize>>, Vec<u32>) {
    let print_unknown = settings.print_unknown && kernel.is_some();
    let check_crcs = kernel.is_some_and(|k| k.check_crcs);
    use rayon::prelude::*;
    let resolved: Vec<(Vec<usize>, Vec<Message>)> = mods
        .par_iter()
        .map(|m| {
            let mut mine: Vec<usize> = Vec::new();
            let mut warn = Vec::new();
            for d in m.record.deps() {
                let key = d.name.strip_prefix('.').unwrap_or(d.name);
                let key = strip_prefix(settings.sym_prefix, key);
                let Some(&(owner, crc)) = table.get(key) else {
                    if print_unknown && !d.weak {
                        warn.push(Message::Warning(format!(
                            "{} needs unknown symbol {}",
                            m.path, d.name
                        )));
                    }
                    continue;
                };
                if check_crcs && crc != d.crc && !d.weak && print_unknown {
                    warn.push(Message::Warning(format!(
                        "{} disagrees about version of symbol {}",
                        m.path, d.name
                    )));
                }
                if let Some((o, _)) = owner
                    && !mine.contains(&(o as usize))
                {
                    mine.push(o as usize);
                }
            }
            (mine, warn)
        })
        .collect();
    let mut deps: Vec<Vec<usize>> = Vec::with_capacity(mods.len());
    let mut users = vec![0u32; mods.len()];
    for (mine, warn) in resolved {
        for &o in &mine {
            users[o] += 1;
        }
        deps.push(mine);
        messages.extend(warn);
    }
    (deps, users)
}

/// Topological sort, exactly as `depmod_calculate_dependencies` (a LIFO of roots): each
/// module's place. `Err` with the users still remaining when there is a cycle.
#[allow(clippy::type_complexity)]
fn sort(
    deps: Vec<Vec<usize>>,
    users: &[u32],
) -> Result<(Vec<Vec<usize>>, Vec<usize>), (Vec<Vec<usize>>, Vec<u32>)> {
    let n = deps.len();
    let mut remaining = users.to_vec();
    let mut roots: Vec<usize> = (0..n).filter(|&i| remaining[i] == 0).collect();
    let mut dep_sort = vec![usize::MAX; n];
    let mut sorted = 0;
    while let Some(src) = roots.pop() {
        dep_sort[src] = sorted;
        sorted += 1;
        for &d in &deps[src] {
            remaining[d] -= 1;
            if remaining[d] == 0 {
                roots.push(d);
            }
        }
    }
    if sorted < n {
        Err((deps, remaining))
    } else {
        Ok((deps, dep_sort))
    }
}

/// The modules' symbols in kmod's hash order: (owner, export index).
fn sorted_symbols(table: Table) -> Vec<(u32, u32)> {
    let mut symbols: Vec<(u32, &str, (u32, u32))> = table
        .into_iter()
        .filter_map(|(name, (owner, _))| {
            owner.map(|o| (hash_order_key(name, SYMBOL_BUCKETS).0, name, o))
        })
        .collect();
    symbols.sort_unstable_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    symbols.into_iter().map(|(_, _, o)| o).collect()
}

/// kmod's `depmod_report_cycles`: a depth-first walk from each module still having users,
/// reporting each path that comes back to its start. Returns the cycles and how many
/// distinct modules they hold.
fn report_cycles(mods: &[ModuleIn], deps: &[Vec<usize>], users: &[u32]) -> (Vec<String>, usize) {
    let mut roots: std::collections::VecDeque<usize> =
        (0..mods.len()).filter(|&i| users[i] > 0).collect();
    let budget = roots.len().max(1) * 64;
    let mut visited = vec![false; mods.len()];
    let mut in_loop = rustc_hash::FxHashSet::default();
    let mut cycles = Vec::new();
    // vertices: (module, parent vertex)
    while let Some(root) = roots.pop_front() {
        let mut vertices: Vec<(usize, Option<usize>)> = vec![(root, None)];
        let mut stack = vec![0usize];
        let mut steps = 0;
        while let Some(v) = stack.pop() {
            steps += 1;
            if steps > budget {
                break; // kmod would overrun its stack here; stop instead
            }
            let m = vertices[v].0;
            if visited[m] && m == root {
                // the path from the root down to v's parent, then the root again
                let mut chain = Vec::new();
                let mut p = vertices[v].1;
                while let Some(pv) = p {
                    chain.push(vertices[pv].0);
                    p = vertices[pv].1;
                }
                chain.reverse();
                let mut text = String::new();
                for &c in &chain {
                    in_loop.insert(c);
                    remove_rotating(&mut roots, c);
                    text.push_str(&mods[c].name);
                    text.push_str(" -> ");
                }
                text.push_str(&mods[m].name);
                cycles.push(text);
                continue;
            }
            visited[m] = true;
            if deps[m].is_empty() {
                remove_rotating(&mut roots, m);
                continue;
            }
            for &d in &deps[m] {
                vertices.push((d, Some(v)));
                stack.push(vertices.len() - 1);
            }
        }
    }
    (cycles, in_loop.len())
}

/// kmod's `kmod_list_remove_data` on its circular list of roots: the element is removed and
/// the list then starts at the element that followed it (kmod keeps the returned node as the
/// head), which decides where the next cycle search starts.
fn remove_rotating(roots: &mut std::collections::VecDeque<usize>, m: usize) {
    if let Some(p) = roots.iter().position(|&r| r == m) {
        roots.remove(p);
        if !roots.is_empty() {
            roots.rotate_left(p % roots.len());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::depmod::scan::RecordBuilder;

    fn module(name: &str, exports: &[&str], needs: &[&str]) -> ModuleIn {
        let mut r = RecordBuilder::default();
        for e in exports {
            r.export(e.as_bytes(), 1);
        }
        for n in needs {
            r.dep(n.as_bytes(), 1, false);
        }
        ModuleIn {
            name: name.into(),
            path: format!("/lib/modules/k/kernel/{name}.ko"),
            rel: Some(format!("kernel/{name}.ko")),
            record: Arc::new(r.finish()),
        }
    }

    #[test]
    fn dependencies_are_ordered_users_first_and_last_provider_wins() {
        let mods = vec![
            module("a", &["a1"], &["b1", "c1"]),
            module("b", &["b1"], &["c1"]),
            module("c", &["c1"], &[]),
            module("c2", &["c1"], &[]),
        ];
        let g = build(mods, None, Settings::default(), Vec::new()).unwrap();
        let idx = |n: &str| g.mods.iter().position(|m| m.name == n).unwrap();
        // c2 comes later in the array: it provides c1
        assert_eq!(g.deps[idx("b")], vec![idx("c2")]);
        assert_eq!(g.deps[idx("a")], vec![idx("b"), idx("c2")]);
        assert!(g.dep_sort[idx("a")] < g.dep_sort[idx("b")]);
        assert!(g.dep_sort[idx("b")] < g.dep_sort[idx("c2")]);
        assert!(g.messages.is_empty());
    }

    #[test]
    fn cycles_are_reported_with_the_path() {
        let mods = vec![
            module("a", &["a1"], &["b1"]),
            module("b", &["b1"], &["a1", "c1"]),
            module("c", &["c1"], &[]),
        ];
        let err = build(mods, None, Settings::default(), Vec::new()).unwrap_err();
        assert_eq!(err.count, 2);
        assert_eq!(err.cycles.len(), 1);
        assert!(
            err.cycles[0] == "a -> b -> a" || err.cycles[0] == "b -> a -> b",
            "{:?}",
            err.cycles
        );
        assert_eq!(
            err.messages.last().unwrap().to_string(),
            "depmod: ERROR: Found 2 modules in dependency cycles!"
        );
    }

    #[test]
    fn unknown_and_mismatched_symbols_are_warned_only_with_kernel_symbols() {
        let mods = vec![
            module("a", &[], &["ksym", "nosuch", "b1"]),
            module("b", &["b1"], &[]),
        ];
        let kernel = KernelSymbols {
            symbols: vec![("ksym".into(), 2)],
            check_crcs: true,
        };
        let s = Settings {
            print_unknown: true,
            sym_prefix: None,
        };
        let g = build(mods.clone(), Some(&kernel), s, Vec::new()).unwrap();
        let text: Vec<String> = g.messages.iter().map(|m| m.to_string()).collect();
        assert_eq!(
            text,
            [
                "depmod: WARNING: /lib/modules/k/kernel/a.ko disagrees about version of symbol ksym",
                "depmod: WARNING: /lib/modules/k/kernel/a.ko needs unknown symbol nosuch",
            ]
        );
        let quiet = build(mods, None, s, Vec::new()).unwrap();
        assert!(quiet.messages.is_empty());
    }

    #[test]
    fn modules_order_puts_listed_modules_first_in_file_order() {
        let mods = vec![
            module("x", &[], &[]),
            module("y", &[], &[]),
            module("z", &[], &[]),
        ];
        let mut msgs = Vec::new();
        let order = b"kernel/z.ko\nkernel/x.ko\n";
        let out = order_modules(mods, Some(order), "modules.order", &mut msgs);
        let names: Vec<&str> = out.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["z", "x", "y"]);
        let mut msgs = Vec::new();
        let mods = vec![module("x", &[], &[])];
        order_modules(mods, Some(b"kernel/x.ko"), "o", &mut msgs);
        assert_eq!(
            msgs,
            [Message::Error("o:1 corrupted line misses '\\n'".into())]
        );
    }

    /// The order as it was computed before the array was sorted as indexes: each module
    /// moved by two sorts, its key a copy of its name, each path a new string.
    fn order_by_copies(mut mods: Vec<ModuleIn>, order: Option<&[u8]>) -> Vec<ModuleIn> {
        mods.sort_by_cached_key(|m| {
            let (bucket, _) = hash_order_key(&m.name, MODULE_BUCKETS);
            (bucket, m.name.clone())
        });
        let Some(order) = order else {
            return mods;
        };
        let lines: Vec<&[u8]> = order.split_inclusive(|&b| b == b'\n').collect();
        if lines.last().is_some_and(|l| !l.ends_with(b"\n")) {
            return mods;
        }
        let total = lines.len() as i64 + 1;
        let by_rel: FxHashMap<String, usize> = mods
            .iter()
            .enumerate()
            .filter_map(|(i, m)| {
                let rel = m.rel.as_deref()?;
                let dir = rel.rfind('/').map_or(0, |i| i + 1);
                let end = (dir + m.name.len()).min(rel.len());
                Some((format!("{}.ko", &rel[..end]), i))
            })
            .collect();
        let mut sort_idx = vec![1i64; mods.len()];
        for (n, line) in lines.iter().enumerate() {
            let line = String::from_utf8_lossy(&line[..line.len() - 1]);
            if let Some(&i) = by_rel.get(line.as_ref()) {
                sort_idx[i] = n as i64 + 1 - total;
            }
        }
        let mut keyed: Vec<(i64, ModuleIn)> = sort_idx.into_iter().zip(mods).collect();
        keyed.sort_by_key(|(k, _)| *k);
        keyed.into_iter().map(|(_, m)| m).collect()
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(400))]
        /// Whatever the modules (names twice, in several directories, compressed or not,
        /// outside the module directory, names that collide in kmod's buckets) and whatever
        /// `modules.order` says (paths twice, unknown paths, compressed names, no last
        /// newline), the module array is in the order the copying sort gave.
        #[test]
        fn the_module_order_is_the_copying_sorts(
            // names up to m29: m14 and m25, m23 and m28 share a bucket of kmod's table
            files in proptest::collection::vec((0u8..30, 0u8..3, 0u8..4), 0..40),
            lines in proptest::collection::vec((0u8..32, 0u8..3, 0u8..3), 0..30),
            cut in proptest::bool::ANY,
        ) {
            let exts = [".ko", ".ko.xz", ".ko.zst", ""];
            let mods: Vec<ModuleIn> = files
                .iter()
                .map(|&(n, d, e)| {
                    // a third of the names have a `-` in their file name
                    let name = match n % 3 {
                        0 => format!("m_{n}"),
                        _ => format!("m{n}"),
                    };
                    let file = format!("{}{}", name.replace('_', "-"), exts[e as usize]);
                    let rel = (e != 3).then(|| format!("kernel/d{d}/{file}"));
                    let path = match &rel {
                        Some(r) => format!("/lib/modules/k/{r}"),
                        None => format!("/opt/x/{file}.ko"),
                    };
                    ModuleIn {
                        name,
                        path,
                        rel,
                        record: Arc::new(RecordBuilder::default().finish()),
                    }
                })
                .collect();
            let mut order: Vec<u8> = lines
                .iter()
                .flat_map(|&(n, d, e)| {
                    let dash = if n % 3 == 0 && d != 2 { "-" } else { "" };
                    format!("kernel/d{d}/m{dash}{n}{}\n", exts[e as usize]).into_bytes()
                })
                .collect();
            if cut {
                order.pop();
            }
            let key = |v: &[ModuleIn]| -> Vec<(String, String)> {
                v.iter().map(|m| (m.name.clone(), m.path.clone())).collect()
            };
            for order in [None, Some(&order[..])] {
                let mut msgs = Vec::new();
                let got = order_modules(mods.clone(), order, "o", &mut msgs);
                proptest::prop_assert_eq!(key(&got), key(&order_by_copies(mods.clone(), order)));
                // the one error: a last line cut short
                let cut_short = order.is_some() && cut && !lines.is_empty();
                proptest::prop_assert_eq!(msgs.len(), usize::from(cut_short));
            }
        }
    }
}
