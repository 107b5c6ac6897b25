//! Reading a component's outer surface (its top-level imports and exports) with
//! `wasmparser`, before compiling it: a component of the wrong world is refused in
//! milliseconds instead of after seconds of compilation. Nested core modules and
//! components are skipped, not parsed.

use wasmparser::{Chunk, Parser, Payload};

/// The top-level import and export names of a component.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Surface {
    pub imports: Vec<String>,
    pub exports: Vec<String>,
}

/// Read the top-level imports and exports of the component in `bytes`.
pub fn surface(bytes: &[u8]) -> Result<Surface, String> {
    let mut parser = Parser::new(0);
    let mut data = bytes;
    let mut out = Surface::default();
    loop {
        let (payload, consumed) = match parser.parse(data, true) {
            Ok(Chunk::Parsed { consumed, payload }) => (payload, consumed),
            Ok(Chunk::NeedMoreData(_)) => return Err("it ends in the middle of a section".into()),
            Err(e) => return Err(format!("{e}")),
        };
        let mut skip = 0;
        match payload {
            Payload::Version { encoding, .. } if encoding != wasmparser::Encoding::Component => {
                return Err("it is a core module, not a component".into());
            }
            Payload::ComponentImportSection(reader) => {
                for import in reader {
                    let import = import.map_err(|e| format!("{e}"))?;
                    out.imports.push(import.name.name.to_owned());
                }
            }
            Payload::ComponentExportSection(reader) => {
                for export in reader {
                    let export = export.map_err(|e| format!("{e}"))?;
                    out.exports.push(export.name.name.to_owned());
                }
            }
            Payload::ModuleSection {
                unchecked_range, ..
            }
            | Payload::ComponentSection {
                unchecked_range, ..
            } => skip = unchecked_range.len(),
            Payload::End(_) => return Ok(out),
            _ => {}
        }
        let next = consumed
            .checked_add(skip)
            .filter(|&n| n <= data.len())
            .ok_or("a nested module or component runs past the end of the file")?;
        data = &data[next..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A LEB128-prefixed byte vector.
    fn vec(bytes: &[u8]) -> Vec<u8> {
        let mut out = leb(bytes.len());
        out.extend_from_slice(bytes);
        out
    }

    fn leb(mut n: usize) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let b = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(b);
                return out;
            }
            out.push(b | 0x80);
        }
    }

    fn section(id: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![id];
        out.extend(vec(body));
        out
    }

    const COMPONENT: &[u8] = b"\0asm\x0d\0\x01\0";

    #[test]
    fn reads_top_level_exports_and_skips_nested_modules() {
        // A nested core module whose bytes are garbage: it must not be parsed.
        let mut c = COMPONENT.to_vec();
        c.extend(section(1, b"\0asm\x01\0\0\0\xff\xff\xff garbage"));
        // A component type section is not needed to read names: an export section
        // with one instance export `kazi:predicate/evaluator@0.1.0` of instance 0.
        let mut exports = leb(1);
        exports.push(0x00); // plain name
        exports.extend(vec(b"kazi:predicate/evaluator@0.1.0"));
        exports.extend([0x05, 0x00, 0x00]); // kind instance, index 0, no type
        c.extend(section(11, &exports));
        let s = surface(&c).unwrap();
        assert_eq!(s.exports, vec!["kazi:predicate/evaluator@0.1.0".to_owned()]);
        assert!(s.imports.is_empty());
    }

    #[test]
    fn refuses_truncated_and_core_binaries() {
        let mut c = COMPONENT.to_vec();
        c.extend([11, 50, 1]); // an export section that claims 50 bytes
        assert!(surface(&c).is_err());
        assert!(
            surface(b"\0asm\x01\0\0\0")
                .unwrap_err()
                .contains("core module")
        );
        let mut nested = COMPONENT.to_vec();
        nested.extend([1, 0x7f]); // a module section longer than the file
        assert!(surface(&nested).is_err());
    }
}
