//! Fuzz target: what the HTTP endpoint reads from a client before it knows who the client is:
//! the `Authorization` header, and the web configuration file an operator edits. Never a panic.

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let text = String::from_utf8_lossy(data);
        let _ = srv_opr::ops::http::auth::credentials(&text);
        let _ = srv_opr::ops::http::webconfig::WebConfig::parse(
            &text,
            std::path::Path::new("/nonexistent"),
        );
    });
}
