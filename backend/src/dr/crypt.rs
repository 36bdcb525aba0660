//! Encryption of backup files: AES-256-GCM over fixed-size chunks (the STREAM construction:
//! nonce = 7 random bytes ‖ chunk counter ‖ last-chunk flag), so files of any size stream
//! through a 1 MiB buffer, a chunk cannot be reordered, dropped or moved to another file
//! (the header and the file name are authenticated with every chunk), and a truncated
//! file fails at its end. The SHA-256 in the manifest is of the stored (encrypted) bytes,
//! computed in the same pass.
//!
//! Stored layout: `EPDRAES1` ‖ nonce prefix (7) ‖ chunk size (u32 BE) ‖ chunks, each its
//! ciphertext followed by its 16-byte tag.

use std::io::{Read, Write};

use rand::RngCore;
use ring::aead::{Aad, LessSafeKey, Nonce, Tag, UnboundKey, AES_256_GCM};
use sha2::{Digest, Sha256};

const MAGIC: &[u8; 8] = b"EPDRAES1";
const HEADER_LEN: usize = 8 + 7 + 4;
const TAG_LEN: usize = 16;
/// Plaintext bytes per chunk.
pub const CHUNK: usize = 1 << 20;

/// The backup key: 32 bytes, from `[dr] key_file` or `ECHOPILOT_DR__KEY`, never stored in
/// a backup. `Debug` shows only its id.
#[derive(Clone)]
pub struct DrKey {
    bytes: [u8; 32],
}

impl std::fmt::Debug for DrKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DrKey({})", self.id())
    }
}

impl DrKey {
    /// Parse 32 bytes written as 64 hex digits or as standard base64 (44 characters).
    pub fn parse(text: &str) -> Result<DrKey, String> {
        use base64::Engine as _;
        let t = text.trim();
        let bytes = if t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()) {
            hex::decode(t).map_err(|e| e.to_string())?
        } else {
            base64::engine::general_purpose::STANDARD
                .decode(t)
                .map_err(|_| {
                    "expected 32 bytes as 64 hex digits or base64 (e.g. `openssl rand -hex 32`)"
                        .to_string()
                })?
        };
        let bytes: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| {
            format!(
                "the key must be 32 bytes (AES-256), got {} bytes; make one with `openssl rand -hex 32`",
                b.len()
            )
        })?;
        Ok(DrKey { bytes })
    }

    /// A public fingerprint of the key (first 8 bytes of a domain-separated SHA-256),
    /// recorded in the manifest so a restore with another key fails by saying so.
    pub fn id(&self) -> String {
        let mut h = Sha256::new();
        h.update(b"echopilot-dr-key-id\0");
        h.update(self.bytes);
        hex::encode(&h.finalize()[..8])
    }

    fn cipher(&self) -> LessSafeKey {
        // 32 bytes is AES-256's key length: this cannot fail.
        LessSafeKey::new(
            UnboundKey::new(&AES_256_GCM, &self.bytes).expect("AES-256 key is 32 bytes"),
        )
    }
}

/// What was written: stored size and SHA-256, and the plaintext size.
#[derive(Debug, Clone)]
pub struct Sealed {
    pub size: u64,
    pub sha256: String,
    pub plain_size: u64,
}

/// The chunk's nonce: unique per chunk of a file (counter), per file (random prefix).
fn nonce(prefix: &[u8; 7], counter: u32, last: bool) -> Nonce {
    let mut n = [0u8; 12];
    n[..7].copy_from_slice(prefix);
    n[7..11].copy_from_slice(&counter.to_be_bytes());
    n[11] = u8::from(last);
    Nonce::assume_unique_for_key(n)
}

/// A fresh random nonce prefix and the stored header carrying it.
fn new_header() -> ([u8; 7], Vec<u8>) {
    let mut prefix = [0u8; 7];
    rand::rngs::OsRng.fill_bytes(&mut prefix);
    let mut header = Vec::with_capacity(HEADER_LEN);
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(&prefix);
    header.extend_from_slice(&(CHUNK as u32).to_be_bytes());
    (prefix, header)
}

fn aad(header: &[u8], name: &str) -> Vec<u8> {
    let mut a = header.to_vec();
    a.extend_from_slice(name.as_bytes());
    a
}

/// Read until `buf` is full or the input ends; returns the bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Buffers in flight between the two threads of [`seal`] and [`open`].
const IN_FLIGHT: usize = 4;

/// Encrypt everything `src` yields into `dst` under the logical file `name`. Two threads:
/// this one reads and encrypts, a second hashes and writes the stored bytes, so SHA-256
/// and AES-GCM run side by side instead of one after the other.
pub fn seal<R: Read, W: Write + Send>(
    key: &DrKey,
    name: &str,
    mut src: R,
    dst: W,
) -> std::io::Result<Sealed> {
    let cipher = key.cipher();
    let (prefix, header) = new_header();
    let ad = aad(&header, name);
    let (to_writer, from_sealer) = std::sync::mpsc::sync_channel::<Vec<u8>>(IN_FLIGHT);
    let (recycle, reuse) = std::sync::mpsc::channel::<Vec<u8>>();
    std::thread::scope(|scope| {
        let writer = scope.spawn(move || -> std::io::Result<(u64, String)> {
            let mut out = std::io::BufWriter::with_capacity(CHUNK + TAG_LEN, dst);
            let mut hash = Sha256::new();
            let mut size = 0u64;
            for buf in from_sealer {
                hash.update(&buf);
                size += buf.len() as u64;
                out.write_all(&buf)?;
                let _ = recycle.send(buf);
            }
            out.flush()?;
            Ok((size, hex::encode(hash.finalize())))
        });
        let sealed = (|| -> std::io::Result<u64> {
            let send = |b: Vec<u8>| {
                to_writer
                    .send(b)
                    .map_err(|_| std::io::Error::other("the backup writer stopped"))
            };
            send(header.clone())?;
            let fresh = |reuse: &std::sync::mpsc::Receiver<Vec<u8>>| {
                let mut b = reuse
                    .try_recv()
                    .unwrap_or_else(|_| Vec::with_capacity(CHUNK + TAG_LEN));
                b.resize(CHUNK, 0);
                b
            };
            // Read one chunk ahead so the last chunk is known when it is sealed.
            let mut cur = fresh(&reuse);
            let mut cur_len = read_full(&mut src, &mut cur)?;
            let mut plain = 0u64;
            let mut counter: u32 = 0;
            loop {
                let mut next = fresh(&reuse);
                let next_len = if cur_len == CHUNK {
                    read_full(&mut src, &mut next)?
                } else {
                    0
                };
                let last = next_len == 0;
                let tag = cipher
                    .seal_in_place_separate_tag(
                        nonce(&prefix, counter, last),
                        Aad::from(&ad[..]),
                        &mut cur[..cur_len],
                    )
                    .map_err(|_| std::io::Error::other("AES-GCM encryption failed"))?;
                cur.truncate(cur_len);
                cur.extend_from_slice(tag.as_ref());
                plain += cur_len as u64;
                send(cur)?;
                if last {
                    return Ok(plain);
                }
                counter = counter
                    .checked_add(1)
                    .ok_or_else(|| std::io::Error::other("file too large for one backup stream"))?;
                cur = next;
                cur_len = next_len;
            }
        })();
        drop(to_writer);
        let written = writer
            .join()
            .map_err(|_| std::io::Error::other("the backup writer panicked"))?;
        let plain_size = sealed?;
        let (size, sha256) = written?;
        Ok(Sealed {
            size,
            sha256,
            plain_size,
        })
    })
}

/// Seal the file `file` (opened for reading and writing) into itself: the same stored
/// bytes [`seal`] writes, written over the plaintext from its start. Used for the
/// temporary clear copy of a database a backup has just made: overwriting pages already
/// in the page cache costs a copy, where writing a second file of the same size costs the
/// kernel a fresh page (and a block reservation) for every 4 KiB of it, which is what a
/// second file measured as on this machine (≈ 0.3 s against 1.4–4 s for 1 GiB).
///
/// Chunk `i` is read from `i * CHUNK` and stored at `HEADER_LEN + i * (CHUNK + TAG_LEN)`,
/// so the stored bytes run ahead of the plaintext by 19 + 16·i bytes: every plaintext
/// byte below the end of a chunk's stored range is read before that chunk is written
/// (the read-ahead grows by one chunk every 64 Ki chunks). Two threads as in [`seal`]:
/// this one reads and encrypts, the other hashes and writes. On an error the file holds
/// neither the plaintext nor a sealed file: the caller deletes it.
#[cfg(unix)]
pub fn seal_in_place(key: &DrKey, name: &str, file: &std::fs::File) -> std::io::Result<Sealed> {
    use std::os::unix::fs::FileExt as _;
    let cipher = key.cipher();
    let plain_len = file.metadata()?.len();
    let chunks = plain_len.div_ceil(CHUNK as u64).max(1);
    if chunks > u64::from(u32::MAX) {
        return Err(std::io::Error::other(
            "file too large for one backup stream",
        ));
    }
    let (prefix, header) = new_header();
    let ad = aad(&header, name);
    let plain_at = |i: u64| (i * CHUNK as u64).min(plain_len);
    // Where chunk `i`'s stored bytes end.
    let stored_end = |i: u64| HEADER_LEN as u64 + plain_at(i + 1) + (i + 1) * TAG_LEN as u64;
    let (to_writer, from_sealer) = std::sync::mpsc::sync_channel::<(u64, Vec<u8>)>(IN_FLIGHT);
    let (recycle, reuse) = std::sync::mpsc::channel::<Vec<u8>>();
    std::thread::scope(|scope| {
        let writer = scope.spawn(move || -> std::io::Result<(u64, String)> {
            let mut hash = Sha256::new();
            let mut size = 0u64;
            for (at, buf) in from_sealer {
                hash.update(&buf);
                file.write_all_at(&buf, at)?;
                size += buf.len() as u64;
                let _ = recycle.send(buf);
            }
            Ok((size, hex::encode(hash.finalize())))
        });
        let sealed = (|| -> std::io::Result<()> {
            let send = |at: u64, b: Vec<u8>| {
                to_writer
                    .send((at, b))
                    .map_err(|_| std::io::Error::other("the backup writer stopped"))
            };
            // Plaintext chunks read and not yet sealed, from chunk `next_seal` on.
            let mut ahead = std::collections::VecDeque::new();
            let mut next_read = 0u64;
            for i in 0..chunks {
                // Read every chunk that starts below the end of this chunk's stored bytes
                // (for chunk 0 that includes the header's range).
                while next_read < chunks && plain_at(next_read) < stored_end(i) {
                    let len = (plain_at(next_read + 1) - plain_at(next_read)) as usize;
                    let mut b = reuse
                        .try_recv()
                        .unwrap_or_else(|_| Vec::with_capacity(CHUNK + TAG_LEN));
                    b.resize(len, 0);
                    file.read_exact_at(&mut b, plain_at(next_read))?;
                    ahead.push_back(b);
                    next_read += 1;
                }
                if i == 0 {
                    send(0, header.clone())?;
                }
                let mut cur = ahead.pop_front().expect("chunk read ahead");
                let tag = cipher
                    .seal_in_place_separate_tag(
                        nonce(&prefix, i as u32, i + 1 == chunks),
                        Aad::from(&ad[..]),
                        &mut cur[..],
                    )
                    .map_err(|_| std::io::Error::other("AES-GCM encryption failed"))?;
                cur.extend_from_slice(tag.as_ref());
                send(HEADER_LEN as u64 + plain_at(i) + i * TAG_LEN as u64, cur)?;
            }
            Ok(())
        })();
        drop(to_writer);
        let written = writer
            .join()
            .map_err(|_| std::io::Error::other("the backup writer panicked"))?;
        sealed?;
        let (size, sha256) = written?;
        Ok(Sealed {
            size,
            sha256,
            plain_size: plain_len,
        })
    })
}

/// Why a stored file could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("not an EchoPilot backup file (bad header)")]
    Format,
    #[error("decryption failed at chunk {0}: wrong key, or the file was altered")]
    Auth(u32),
    #[error("the file ends early (truncated)")]
    Truncated,
}

/// What [`open`] read: stored size and SHA-256, plaintext size.
#[derive(Debug, Clone)]
pub struct Opened {
    pub size: u64,
    pub sha256: String,
    pub plain_size: u64,
}

/// Decrypt `src` (stored size `stored_len`) into `dst`, hashing the stored bytes. A
/// failure leaves `dst` holding a prefix of the plaintext: callers write to a temporary
/// name and discard it. Two threads: a reader hashes the stored bytes, this one decrypts.
pub fn open<R: Read + Send, W: Write>(
    key: &DrKey,
    name: &str,
    mut src: R,
    stored_len: u64,
    mut dst: W,
) -> Result<Opened, OpenError> {
    let cipher = key.cipher();
    let mut header = [0u8; HEADER_LEN];
    if read_full(&mut src, &mut header)? < HEADER_LEN || &header[..8] != MAGIC {
        return Err(OpenError::Format);
    }
    let prefix: [u8; 7] = header[8..15].try_into().map_err(|_| OpenError::Format)?;
    let chunk =
        u32::from_be_bytes(header[15..19].try_into().map_err(|_| OpenError::Format)?) as usize;
    if chunk == 0 || chunk > 64 << 20 {
        return Err(OpenError::Format);
    }
    let ad = aad(&header, name);
    let body = stored_len.saturating_sub(HEADER_LEN as u64);
    let sealed = (chunk + TAG_LEN) as u64;
    let chunks = body.div_ceil(sealed).max(1);
    if chunks > u64::from(u32::MAX) {
        return Err(OpenError::Format);
    }
    let (to_opener, from_reader) = std::sync::mpsc::sync_channel::<Vec<u8>>(IN_FLIGHT);
    let (recycle, reuse) = std::sync::mpsc::channel::<Vec<u8>>();
    std::thread::scope(|scope| {
        let reader = scope.spawn(move || -> Result<(u64, String), OpenError> {
            let mut hash = Sha256::new();
            hash.update(header);
            let mut size = HEADER_LEN as u64;
            for counter in 0..chunks {
                let want = if counter + 1 == chunks {
                    (body - counter * sealed) as usize
                } else {
                    chunk + TAG_LEN
                };
                if want < TAG_LEN {
                    return Err(OpenError::Truncated);
                }
                let mut buf = reuse.try_recv().unwrap_or_default();
                buf.resize(want, 0);
                if read_full(&mut src, &mut buf)? < want {
                    return Err(OpenError::Truncated);
                }
                hash.update(&buf);
                size += want as u64;
                if to_opener.send(buf).is_err() {
                    break;
                }
            }
            Ok((size, hex::encode(hash.finalize())))
        });
        let opened = (|| -> Result<u64, OpenError> {
            let mut plain = 0u64;
            for (counter, mut buf) in from_reader.into_iter().enumerate() {
                let counter = counter as u32;
                let last = u64::from(counter) + 1 == chunks;
                let n = buf.len();
                let (data, tag) = buf.split_at_mut(n - TAG_LEN);
                let tag = Tag::try_from(&tag[..]).map_err(|_| OpenError::Auth(counter))?;
                cipher
                    .open_in_place_separate_tag(
                        nonce(&prefix, counter, last),
                        Aad::from(&ad[..]),
                        tag,
                        data,
                        0..,
                    )
                    .map_err(|_| OpenError::Auth(counter))?;
                dst.write_all(data)?;
                plain += data.len() as u64;
                let _ = recycle.send(buf);
            }
            dst.flush()?;
            Ok(plain)
        })();
        // On a decryption error the reader is stopped by the closed channel.
        let read = reader
            .join()
            .map_err(|_| OpenError::Io(std::io::Error::other("the backup reader panicked")))?;
        let plain_size = opened?;
        let (size, sha256) = read?;
        Ok(Opened {
            size,
            sha256,
            plain_size,
        })
    })
}

/// SHA-256 and size of a file as stored (the manifest check before anything is opened).
pub fn hash_file(path: &std::path::Path) -> std::io::Result<(u64, String)> {
    let mut f = std::fs::File::open(path)?;
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut size = 0u64;
    loop {
        let n = read_full(&mut f, &mut buf)?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
        size += n as u64;
    }
    Ok((size, hex::encode(hash.finalize())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> DrKey {
        DrKey::parse(&hex::encode([b; 32])).unwrap()
    }

    fn roundtrip(len: usize) {
        let data: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
        let mut stored = Vec::new();
        let s = seal(&key(1), "f", &data[..], &mut stored).unwrap();
        assert_eq!(s.size as usize, stored.len());
        assert_eq!(s.plain_size as usize, len);
        let mut back = Vec::new();
        let o = open(&key(1), "f", &stored[..], stored.len() as u64, &mut back).unwrap();
        assert_eq!(back, data, "len {len}");
        assert_eq!(o.sha256, s.sha256);
    }

    #[test]
    fn sizes_around_chunk_boundaries_roundtrip() {
        for len in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 2 * CHUNK + 7] {
            roundtrip(len);
        }
    }

    /// Sealing a file over itself stores what `seal` would (it opens with the same key and
    /// name, its SHA-256 is of the bytes on disk), at every size around a chunk boundary.
    #[cfg(unix)]
    #[test]
    fn sealing_in_place_opens_like_a_sealed_copy() {
        let dir = tempfile::tempdir().unwrap();
        for len in [
            0,
            1,
            18,
            CHUNK - 1,
            CHUNK,
            CHUNK + 1,
            3 * CHUNK - 20,
            3 * CHUNK + 7,
        ] {
            let data: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            let path = dir.path().join(format!("f{len}"));
            std::fs::write(&path, &data).unwrap();
            let f = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .unwrap();
            let s = seal_in_place(&key(1), "db", &f).unwrap();
            drop(f);
            let stored = std::fs::read(&path).unwrap();
            assert_eq!(s.size as usize, stored.len(), "len {len}");
            assert_eq!(s.plain_size as usize, len);
            assert_eq!(s.sha256, hex::encode(Sha256::digest(&stored)));
            let mut copy = Vec::new();
            seal(&key(1), "db", &data[..], &mut copy).unwrap();
            assert_eq!(copy.len(), stored.len(), "len {len}");
            let n = stored.len() as u64;
            let mut back = Vec::new();
            open(&key(1), "db", &stored[..], n, &mut back).unwrap();
            assert_eq!(back, data, "len {len}");
            let other_key = open(&key(2), "db", &stored[..], n, &mut Vec::new());
            assert!(matches!(other_key, Err(OpenError::Auth(0))), "len {len}");
        }
    }

    #[test]
    fn wrong_key_flipped_byte_truncation_and_renaming_fail() {
        let data = vec![7u8; CHUNK + 100];
        let mut stored = Vec::new();
        seal(&key(1), "db", &data[..], &mut stored).unwrap();
        let n = stored.len() as u64;
        let mut sink = Vec::new();
        assert!(matches!(
            open(&key(2), "db", &stored[..], n, &mut sink),
            Err(OpenError::Auth(0))
        ));
        assert!(matches!(
            open(&key(1), "other", &stored[..], n, &mut Vec::new()),
            Err(OpenError::Auth(0))
        ));
        let mut flipped = stored.clone();
        flipped[HEADER_LEN + CHUNK + 20] ^= 1;
        assert!(matches!(
            open(&key(1), "db", &flipped[..], n, &mut Vec::new()),
            Err(OpenError::Auth(1))
        ));
        // Dropping the last chunk leaves a chunk not flagged last: it does not verify.
        let cut = &stored[..HEADER_LEN + CHUNK + TAG_LEN];
        assert!(open(&key(1), "db", cut, cut.len() as u64, &mut Vec::new()).is_err());
    }

    /// A file sealed by an earlier build (chunk size 16 in its header, three chunks) still
    /// opens: the stored format is the contract with every backup already on disk, whatever
    /// AES-GCM implementation seals today.
    #[test]
    fn a_file_sealed_by_an_earlier_build_still_opens() {
        const STORED: &str = "4550445241455331636f6d70617421000000109257795b4d55eb9f1e2d8b0172ae292110fd6a97c343f72d485ff3c964de3cf547c71afdd34a7932d24995951f42b8bd3445c99a7874c294719d35d8b517945ad365c5f3958aeb49eaab45163a9c2320201fe8a8018a79b7114472cdb5";
        let stored = hex::decode(STORED).unwrap();
        let mut back = Vec::new();
        let o = open(
            &key(0x5a),
            "vector.enc",
            &stored[..],
            stored.len() as u64,
            &mut back,
        )
        .unwrap();
        assert_eq!(back, b"EchoPilot DR compatibility vector (3 chunks).");
        assert_eq!(o.plain_size, 45);
        assert_eq!(o.sha256, hex::encode(Sha256::digest(&stored)));
        // The same bytes under another name, or with the last chunk dropped, do not open.
        assert!(open(
            &key(0x5a),
            "other.enc",
            &stored[..],
            stored.len() as u64,
            &mut Vec::new()
        )
        .is_err());
        let cut = &stored[..stored.len() - (13 + TAG_LEN)];
        assert!(open(
            &key(0x5a),
            "vector.enc",
            cut,
            cut.len() as u64,
            &mut Vec::new()
        )
        .is_err());
    }

    #[test]
    fn keys_parse_from_hex_or_base64_and_have_stable_ids() {
        let hexk = hex::encode([9u8; 32]);
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode([9u8; 32]);
        assert_eq!(
            DrKey::parse(&hexk).unwrap().id(),
            DrKey::parse(&b64).unwrap().id()
        );
        assert_ne!(key(1).id(), key(2).id());
        assert!(DrKey::parse("abcd").unwrap_err().contains("32 bytes"));
        assert!(!format!("{:?}", key(3)).contains(&hex::encode([3u8; 32])));
    }
}
