//! Finding the etcd / kube-apiserver / kube-controller-manager / kubectl binaries.
//!
//! They are built from Go modules by `scripts/install-control-plane` into a version-keyed cache
//! folder outside the work tree. The script is the single source of truth for that folder, so the
//! harness asks it (`--print-dir`) instead of duplicating the version numbers here.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::HarnessError;

/// Environment variable naming a folder with the four binaries; overrides the script.
pub const BIN_DIR_ENV: &str = "MARKETPLACE_CONTROL_PLANE_BIN";

/// Absolute paths of the control-plane binaries.
#[derive(Debug, Clone)]
pub struct Binaries {
    /// `etcd`
    pub etcd: PathBuf,
    /// `kube-apiserver`
    pub kube_apiserver: PathBuf,
    /// `kube-controller-manager`
    pub kube_controller_manager: PathBuf,
    /// `kubectl` of the same minor as the apiserver.
    pub kubectl: PathBuf,
}

impl Binaries {
    /// Locates the binaries: `dir` if given, else [`BIN_DIR_ENV`], else what
    /// `scripts/install-control-plane --print-dir` prints. Every binary must exist.
    pub fn locate(dir: Option<&Path>) -> Result<Self, HarnessError> {
        let dir = match dir {
            Some(dir) => dir.to_path_buf(),
            None => match std::env::var_os(BIN_DIR_ENV) {
                Some(dir) if !dir.is_empty() => PathBuf::from(dir),
                _ => dir_from_install_script()?,
            },
        };
        Self::in_dir(&dir)
    }

    /// The binaries in `dir`, checking that each one is there.
    pub fn in_dir(dir: &Path) -> Result<Self, HarnessError> {
        let file = |name: &str| {
            let path = dir.join(name);
            if path.is_file() {
                Ok(path)
            } else {
                Err(HarnessError::MissingBinary { path })
            }
        };
        Ok(Self {
            etcd: file("etcd")?,
            kube_apiserver: file("kube-apiserver")?,
            kube_controller_manager: file("kube-controller-manager")?,
            kubectl: file("kubectl")?,
        })
    }
}

/// The repository root, known at compile time (this crate lives at `tests/harness`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn dir_from_install_script() -> Result<PathBuf, HarnessError> {
    let script = workspace_root().join("scripts/install-control-plane");
    let output = Command::new(&script)
        .arg("--print-dir")
        .output()
        .map_err(|e| HarnessError::BinaryDir {
            reason: format!("running {} --print-dir: {e}", script.display()),
        })?;
    let printed = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    if !output.status.success() || printed.is_empty() {
        return Err(HarnessError::BinaryDir {
            reason: format!(
                "{} --print-dir failed ({}): {}",
                script.display(),
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ),
        });
    }
    Ok(PathBuf::from(printed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_binary_names_the_file_and_the_script() {
        let dir = tempfile::tempdir().unwrap();
        let err = Binaries::in_dir(dir.path()).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("etcd"), "{text}");
        assert!(text.contains("scripts/install-control-plane"), "{text}");
    }
}
