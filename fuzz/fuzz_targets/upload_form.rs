//! The upload page's form reader (multipart) on any body, as a signed-in user's browser (or an
//! attacker's script) could send it.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    let save_to = crest_fuzz::scratch_file("upload.bin", b"");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    let _ = runtime.block_on(crest_web::read_upload_form(
        "crestboundary",
        body.to_vec(),
        &save_to,
    ));
});
