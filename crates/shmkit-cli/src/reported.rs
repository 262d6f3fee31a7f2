//! Failures reported line by line while a command goes on with its other
//! targets (`rm a b c`, `ls` of both kinds); the command then ends with
//! `Failure::Reported`.

/// `e` as one line naming `shown`, the target as the user wrote it: a
/// System V segment given as `key:…` is still named so when the library's
/// error names its id.
pub fn reword(shown: &str, e: &shmkit::Error) -> String {
    let msg = e.to_string();
    match e.target() {
        Some(t) => {
            let prefix = format!("{t}: ");
            format!("{shown}: {}", msg.strip_prefix(&prefix).unwrap_or(&msg))
        }
        None => msg,
    }
}
