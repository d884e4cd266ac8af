//! Capabilities left to a sandbox's root: Docker's default set less CAP_NET_RAW (a sandbox's network is
//! its own loopback, where raw and packet sockets have nothing to offer but kernel surface), which lets
//! package managers and servers work but not mount, load modules, reach raw devices, trace the host or
//! change the clock.

use serde::{Deserialize, Serialize};

const CAP_CHOWN: u32 = 0;
const CAP_DAC_OVERRIDE: u32 = 1;
const CAP_FOWNER: u32 = 3;
const CAP_FSETID: u32 = 4;
const CAP_KILL: u32 = 5;
const CAP_SETGID: u32 = 6;
const CAP_SETUID: u32 = 7;
const CAP_SETPCAP: u32 = 8;
const CAP_NET_BIND_SERVICE: u32 = 10;
const CAP_SYS_CHROOT: u32 = 18;
const CAP_MKNOD: u32 = 27;
const CAP_AUDIT_WRITE: u32 = 29;
const CAP_SETFCAP: u32 = 31;

/// The capability set a sandbox keeps, as a bit mask over capability numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapSet(pub u64);

impl CapSet {
    /// The default set. `mknod` stays only when the devices cgroup stops it from reaching host devices.
    pub fn sandbox_default(devices_confined: bool) -> CapSet {
        let mut caps = vec![
            CAP_CHOWN,
            CAP_DAC_OVERRIDE,
            CAP_FOWNER,
            CAP_FSETID,
            CAP_KILL,
            CAP_SETGID,
            CAP_SETUID,
            CAP_SETPCAP,
            CAP_NET_BIND_SERVICE,
            CAP_SYS_CHROOT,
            CAP_AUDIT_WRITE,
            CAP_SETFCAP,
        ];
        if devices_confined {
            caps.push(CAP_MKNOD);
        }
        CapSet(caps.iter().fold(0, |m, c| m | (1u64 << c)))
    }

    pub fn contains(self, cap: u32) -> bool {
        cap < 64 && self.0 & (1u64 << cap) != 0
    }
}

/// Highest capability number the kernel knows.
pub fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap").ok().and_then(|s| s.trim().parse().ok()).unwrap_or(40)
}

/// In the sandbox child, before exec: drop every capability outside `keep` from the bounding set, then
/// lower the permitted, effective and inheritable sets to `keep`. As root, exec then grants exactly `keep`.
pub fn restrict_in_child(keep: CapSet, last: u32) -> Result<(), nix::errno::Errno> {
    for cap in 0..=last {
        if !keep.contains(cap) {
            // SAFETY: prctl(PR_CAPBSET_DROP) takes a capability number and touches no memory of ours.
            let rc = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, libc::c_ulong::from(cap), 0, 0, 0) };
            if rc != 0 {
                return Err(nix::errno::Errno::last());
            }
        }
    }
    let header = CapHeader { version: LINUX_CAPABILITY_VERSION_3, pid: 0 };
    let low = (keep.0 & 0xffff_ffff) as u32;
    let high = (keep.0 >> 32) as u32;
    let data = [
        CapData { effective: low, permitted: low, inheritable: 0 },
        CapData { effective: high, permitted: high, inheritable: 0 },
    ];
    // SAFETY: capset(2) reads one header and two data structs laid out as the kernel's v3 ABI defines.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &header as *const CapHeader, data.as_ptr()) };
    if rc != 0 {
        return Err(nix::errno::Errno::last());
    }
    Ok(())
}

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_set_excludes_admin_and_module_caps() {
        let set = CapSet::sandbox_default(true);
        for dangerous in [
            21, /* SYS_ADMIN */
            16, /* SYS_MODULE */
            17, /* SYS_RAWIO */
            19, /* SYS_PTRACE */
            12, /* NET_ADMIN */
            13, /* NET_RAW */
        ] {
            assert!(!set.contains(dangerous), "cap {dangerous} must be dropped");
        }
        assert!(set.contains(CAP_CHOWN) && set.contains(CAP_MKNOD));
        assert!(!CapSet::sandbox_default(false).contains(CAP_MKNOD));
    }
}
