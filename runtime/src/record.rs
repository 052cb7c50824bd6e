//! Small JSON records on disk, written atomically (temp file, fsync,
//! rename) so a crash leaves the old record or the new one, never half of
//! one. Backends keep their state in such files rather than in memory, so
//! a restarted node agent sees what is really there.

use std::fs;
use std::io::Write;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Result, RuntimeError};

pub fn write<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let bytes = serde_json::to_vec(value)
        .map_err(|e| RuntimeError::internal(format!("encoding {}: {e}", path.display())))?;
    let tmp = path.with_extension("tmp");
    let mut f = fs::File::create(&tmp).map_err(|e| RuntimeError::io(tmp.display(), e))?;
    f.write_all(&bytes)
        .map_err(|e| RuntimeError::io(tmp.display(), e))?;
    f.sync_data()
        .map_err(|e| RuntimeError::io(tmp.display(), e))?;
    fs::rename(&tmp, path).map_err(|e| RuntimeError::io(path.display(), e))
}

/// `Ok(None)` when the file does not exist.
pub fn read<T: DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| RuntimeError::internal(format!("decoding {}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(RuntimeError::io(path.display(), e)),
    }
}

/// Ids of the subdirectories of `dir` (empty when `dir` is missing).
pub fn list_dirs(dir: &Path) -> Result<Vec<String>> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(RuntimeError::io(dir.display(), e)),
    };
    let mut ids = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| RuntimeError::io(dir.display(), e))?;
        if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            if let Some(name) = entry.file_name().to_str() {
                ids.push(name.to_string());
            }
        }
    }
    ids.sort();
    Ok(ids)
}

/// Removes a directory tree; a missing one is fine.
pub fn remove_dir(dir: &Path) -> Result<()> {
    match fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(RuntimeError::io(format!("removing {}", dir.display()), e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_then_read_round_trips_and_missing_is_none() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.json");
        assert_eq!(read::<Vec<u32>>(&p).unwrap(), None);
        write(&p, &vec![1u32, 2]).unwrap();
        assert_eq!(read::<Vec<u32>>(&p).unwrap(), Some(vec![1, 2]));
        assert!(!p.with_extension("tmp").exists());
        fs::write(&p, b"{").unwrap();
        assert_eq!(
            read::<Vec<u32>>(&p).unwrap_err().kind,
            crate::ErrorKind::Internal
        );
    }
}
