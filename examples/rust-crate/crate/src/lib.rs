//! A tiny crate for the rust-crate example goal.

/// Greets `name`.
pub fn greet(name: &str) -> String {
    format!("hello, {name}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greets_by_name() {
        assert_eq!(greet("kazi"), "hello, kazi");
    }

    #[test]
    fn greets_the_empty_name() {
        assert_eq!(greet(""), "hello, ");
    }
}
