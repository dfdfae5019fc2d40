//! The hot paths of ingest, on a trail-shaped `{"Records":[...]}` file built from the real
//! Stratus Red Team events of the fixtures: framing alone, normalizing events alone, decode
//! (frame + normalize + build Arrow), Parquet encode alone, and decode + Parquet encode.
//!
//! `cargo bench -p trawl-ingest --bench ingest`

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn records_file(copies: usize) -> (String, u64) {
    let events = trawl_ingest::bench::stratus_events();
    let mut all = Vec::new();
    for i in 0..copies {
        for e in &events {
            let mut e = e.clone();
            e["eventID"] = format!("{}-{i}", e["eventID"].as_str().unwrap()).into();
            all.push(e);
        }
    }
    let n = all.len() as u64;
    (serde_json::to_string(&serde_json::json!({ "Records": all })).unwrap(), n)
}

fn bench(c: &mut Criterion) {
    let (text, events) = records_file(32);
    let mut group = c.benchmark_group("ingest");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.bench_function(format!("frame/{events}-events"), |b| {
        b.iter(|| assert_eq!(trawl_ingest::bench::frame(&text) as u64, events))
    });
    let one_by_one: Vec<String> = serde_json::from_str::<serde_json::Value>(&text).unwrap()["Records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| serde_json::to_string_pretty(e).unwrap())
        .collect();
    group.bench_function(format!("normalize/{events}-events"), |b| {
        b.iter(|| one_by_one.iter().map(|e| trawl_ingest::bench::normalize(e)).sum::<usize>())
    });
    group.bench_function(format!("decode/{events}-events"), |b| {
        b.iter(|| assert_eq!(trawl_ingest::bench::decode_text(&text).num_rows() as u64, events))
    });
    // The store's writer, as ingest uses it: rows in (eventdate, eventtime) order (a change of
    // date starts a file), a file per date, columns encoded on every core.
    let encode = |batch: &arrow::array::RecordBatch| {
        use arrow::array::AsArray;
        use arrow::datatypes::{Date32Type, TimestampMicrosecondType};
        let dates = batch.column_by_name("eventdate").unwrap().as_primitive::<Date32Type>();
        let times = batch.column_by_name("eventtime").unwrap().as_primitive::<TimestampMicrosecondType>();
        let mut rows: Vec<(usize, usize)> = (0..batch.num_rows()).map(|r| (0, r)).collect();
        rows.sort_by_key(|&(_, r)| (dates.value(r), times.value(r)));
        let mut w = trawl_store::StoreWriter::default();
        w.write_rows(&[batch], &rows).unwrap();
        w.bytes()
    };
    let decoded = trawl_ingest::bench::decode_text(&text);
    group.bench_function(format!("parquet/{events}-events"), |b| b.iter(|| encode(&decoded)));
    group.bench_function(format!("decode+parquet/{events}-events"), |b| {
        b.iter(|| encode(&trawl_ingest::bench::decode_text(&text)))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
