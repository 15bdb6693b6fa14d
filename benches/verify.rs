//! `kabi verify` on a typical host: the real cloud-amd64 kernel (1,121 modules) with a
//! modules-load.d naming 300 of them, the kernel's symvers in /boot. Goal: under 50 ms.

mod common;

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::process::Command;

fn bench(c: &mut Criterion) {
    let src = common::fetch(None);
    let kver = common::kver(&src);
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    std::fs::create_dir_all(root.join("lib/modules")).unwrap();
    assert!(
        Command::new("cp")
            .arg("-al")
            .arg(src.join("lib/modules").join(&kver))
            .arg(root.join("lib/modules"))
            .status()
            .unwrap()
            .success()
    );
    std::fs::create_dir_all(root.join("boot")).unwrap();
    let symvers = src.join(format!("usr/src/linux-headers-{kver}/Module.symvers"));
    let gz = Command::new("gzip")
        .arg("-c")
        .arg(&symvers)
        .output()
        .unwrap();
    std::fs::write(root.join(format!("boot/symvers-{kver}.gz")), gz.stdout).unwrap();
    let _ = std::fs::copy(
        src.join(format!("boot/config-{kver}")),
        root.join(format!("boot/config-{kver}")),
    );
    // indexes, as on an installed host
    let dir = root.join("lib/modules").join(&kver);
    let mut log = |_: &kabi::depmod::graph::Message| {};
    kabi::depmod::run(
        &kabi::depmod::Options {
            root: Some(root.to_path_buf()),
            kver: kver.clone(),
            config: Some(vec![root.join("none")]),
            ..Default::default()
        },
        &mut log,
    )
    .unwrap();
    let names: Vec<String> = kabi::kernel::tree::module_files(&dir.join("kernel"))
        .iter()
        .step_by(3)
        .take(300)
        .map(|p| kabi::module::name_from_path(p))
        .collect();
    assert_eq!(names.len(), 300);
    let conf = root.join("etc/modules-load.d");
    std::fs::create_dir_all(&conf).unwrap();
    std::fs::write(conf.join("host.conf"), names.join("\n")).unwrap();

    let mut g = c.benchmark_group("verify");
    g.sample_size(20);
    let r0 = kabi::root::Root::open(root).unwrap();
    let _ = &dir;
    g.bench_function("300 modules from modules-load.d, cloud kernel", |b| {
        b.iter(|| {
            let mut wanted = kabi::verify::wanted_by_config(&r0, "");
            wanted.extend(kabi::verify::wanted_by_tree(&r0, &kver));
            let r = kabi::verify::verify(&r0, &kver, wanted);
            assert_eq!(r.findings.len(), 300);
            black_box(r)
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
