//! Other tools' own fingerprints of a migration, computed as each tool computes them: pgshift
//! compares them with what a tool recorded (a file edited after the tool applied it is not
//! adopted silently) and writes them when it records a migration in the tool's table
//! (`[run] record_in_old_tool`).
//!
//! Every fingerprint is text here, in the form the tool's table holds it once read as text
//! (sqlx's `bytea` as lowercase hex, Flyway's `integer` in decimal).

use sha2::Digest;

use crate::{Migration, MigrationSet};

/// A tool's own fingerprint of a migration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ToolChecksum {
    /// sqlx: SHA-384 of the migration's SQL text (`_sqlx_migrations.checksum`, `bytea`), as hex.
    Sha384,
    /// Prisma and Drizzle: SHA-256 of the file's text, lowercase hex
    /// (`_prisma_migrations.checksum`, `__drizzle_migrations.hash`).
    Sha256Hex,
    /// Flyway: CRC-32 of the file's lines without their line breaks (a byte-order mark
    /// dropped), as a signed 32-bit integer (`flyway_schema_history.checksum`).
    FlywayCrc32,
    /// Atlas: the file's entry in `atlas.sum`, a running SHA-256 over the names and contents of
    /// the files up to this one, base64 (`atlas_schema_revisions.hash`).
    AtlasSum,
}

impl ToolChecksum {
    /// The fingerprint of `m`, a migration of `set`, as the tool computes it.
    pub fn of(self, set: &MigrationSet, m: &Migration) -> String {
        match self {
            ToolChecksum::Sha384 => hex(&sha2::Sha384::digest(m.up.sql().as_bytes())),
            ToolChecksum::Sha256Hex => hex(&sha2::Sha256::digest(m.up.file_text.as_bytes())),
            ToolChecksum::FlywayCrc32 => flyway_crc32(&m.up.file_text).to_string(),
            ToolChecksum::AtlasSum => self
                .of_set(set)
                .into_iter()
                .zip(&set.migrations)
                .find(|(_, each)| each.version == m.version)
                .map(|(sum, _)| sum)
                .unwrap_or_default(),
        }
    }

    /// The fingerprint of every migration of `set`, in order: Atlas's running hash is computed
    /// once for the whole folder.
    pub fn of_set(self, set: &MigrationSet) -> Vec<String> {
        match self {
            ToolChecksum::AtlasSum => {
                let names: Vec<String> = set
                    .migrations
                    .iter()
                    .map(|m| {
                        m.up.path
                            .file_name()
                            .map(|n| n.to_string_lossy().into_owned())
                            .unwrap_or_default()
                    })
                    .collect();
                let entries = crate::formats::atlas::hash_files(
                    names
                        .iter()
                        .zip(&set.migrations)
                        .map(|(name, m)| (name.as_str(), m.up.file_text.as_bytes())),
                );
                // A file `-- atlas:sum ignore` has no entry; every other one has, in order.
                names
                    .iter()
                    .map(|name| {
                        entries
                            .iter()
                            .find(|e| e.name == *name)
                            .map(|e| e.hash.clone())
                            .unwrap_or_default()
                    })
                    .collect()
            }
            _ => set.migrations.iter().map(|m| self.of(set, m)).collect(),
        }
    }

    /// Whether `recorded`, what the tool stored for `m`, is `m`'s fingerprint as it stands.
    /// Prisma also accepts the file with its line endings changed, as Prisma does.
    pub fn matches(self, recorded: &str, computed: &str, m: &Migration) -> bool {
        // An `atlas.sum` line's `h1:` in front of the hash, should a table hold it.
        let recorded = recorded.trim();
        let recorded = recorded.strip_prefix("h1:").unwrap_or(recorded);
        // Hex is read in either case; Atlas's base64 is not case-blind.
        let same = |a: &str, b: &str| match self {
            ToolChecksum::AtlasSum => a == b,
            _ => a.eq_ignore_ascii_case(b),
        };
        if same(recorded, computed) {
            return true;
        }
        if self != ToolChecksum::Sha256Hex {
            return false;
        }
        let text: &str = &m.up.file_text;
        let lf = text.replace("\r\n", "\n");
        let crlf = lf.replace('\n', "\r\n");
        [lf, crlf]
            .iter()
            .any(|t| recorded.eq_ignore_ascii_case(&hex(&sha2::Sha256::digest(t.as_bytes()))))
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// Flyway's `ChecksumCalculator`: the file read line by line (`\n`, `\r\n` or `\r` ends a
/// line), each line's UTF-8 bytes without its line break fed to one CRC-32, a byte-order mark
/// removed from the first line; the result as Java's `int`.
fn flyway_crc32(text: &str) -> i32 {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut crc = Crc32::new();
    for chunk in text.split(['\r', '\n']) {
        crc.update(chunk.as_bytes());
    }
    i32::from_ne_bytes(crc.finish().to_ne_bytes())
}

/// CRC-32 (IEEE 802.3, reflected, as `java.util.zip.CRC32` and zlib compute it).
struct Crc32 {
    value: u32,
}

impl Crc32 {
    const TABLE: [u32; 256] = {
        let mut table = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
                k += 1;
            }
            table[i] = c;
            i += 1;
        }
        table
    };

    fn new() -> Crc32 {
        Crc32 { value: 0xFFFF_FFFF }
    }

    fn update(&mut self, bytes: &[u8]) {
        for b in bytes {
            let index = usize::from((self.value as u8) ^ b);
            self.value = Crc32::TABLE[index] ^ (self.value >> 8);
        }
    }

    fn finish(&self) -> u32 {
        self.value ^ 0xFFFF_FFFF
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_standard_check_value() {
        let mut crc = Crc32::new();
        crc.update(b"123456789");
        assert_eq!(crc.finish(), 0xCBF4_3926);
    }

    #[test]
    fn flyway_ignores_line_breaks_and_the_byte_order_mark() {
        let lf = flyway_crc32("CREATE TABLE t (id int);\nSELECT 1;\n");
        assert_eq!(
            lf,
            flyway_crc32("CREATE TABLE t (id int);\r\nSELECT 1;\r\n")
        );
        assert_eq!(
            lf,
            flyway_crc32("\u{feff}CREATE TABLE t (id int);\nSELECT 1;")
        );
        assert_ne!(lf, flyway_crc32("CREATE TABLE t (id bigint);\nSELECT 1;\n"));
        // Java's int: the unsigned CRC above 2^31 reads as negative.
        let mut crc = Crc32::new();
        crc.update(b"123456789");
        assert_eq!(
            i32::from_ne_bytes(crc.finish().to_ne_bytes()),
            0xCBF4_3926_u32 as i32
        );
    }

    #[test]
    fn hex_is_lowercase_and_two_digits_a_byte() {
        assert_eq!(hex(&[0, 15, 255]), "000fff");
    }
}
