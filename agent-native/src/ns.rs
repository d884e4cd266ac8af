//! Namespaces: the clone3 calls that put a new process into fresh namespaces, and the network
//! namespace a sandbox gets (loopback up).

use std::os::fd::{FromRawFd, OwnedFd};

use nix::errno::Errno;

/// The namespaces a sandbox gets without a user namespace (--no-userns): its root is host root,
/// confined by the capability set, seccomp and the devices cgroup (see caps.rs).
pub const SANDBOX_NAMESPACES: u64 =
    (libc::CLONE_NEWPID | libc::CLONE_NEWNS | libc::CLONE_NEWUTS | libc::CLONE_NEWIPC | libc::CLONE_NEWNET) as u64;

/// The namespaces a sandbox's first process is cloned into with a user namespace. Not the network one:
/// that is made before (`new_network`), owned by the initial user namespace, so that the host can set it
/// up and CRIU can hand it over as external; root in the sandbox cannot reconfigure it.
pub const SANDBOX_NAMESPACES_USERNS: u64 =
    (libc::CLONE_NEWUSER | libc::CLONE_NEWPID | libc::CLONE_NEWNS | libc::CLONE_NEWUTS | libc::CLONE_NEWIPC) as u64;

pub enum Forked {
    Child,
    Parent { pid: i32, pidfd: OwnedFd },
}

#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// fork(2) into new namespaces, returning a pidfd for race-free signalling and reaping.
///
/// Must only be called from a single-threaded process: the child continues on a copy of the caller's
/// stack, and another thread's lock (in malloc, say) would stay held forever in the child.
pub fn clone_into_namespaces(namespaces: u64) -> Result<Forked, Errno> {
    let mut pidfd: libc::c_int = -1;
    let args = CloneArgs {
        flags: namespaces | libc::CLONE_PIDFD as u64,
        pidfd: &mut pidfd as *mut libc::c_int as u64,
        exit_signal: libc::SIGCHLD as u64,
        ..Default::default()
    };
    // SAFETY: clone3 with no stack behaves like fork: the child resumes here on a copy-on-write copy of
    // this stack. `args` and `pidfd` outlive the call; the kernel writes the pidfd before returning.
    let rc = unsafe { libc::syscall(libc::SYS_clone3, &args as *const CloneArgs, std::mem::size_of::<CloneArgs>()) };
    match rc {
        -1 => Err(Errno::last()),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent {
            pid: pid as i32,
            // SAFETY: the kernel just returned this fd to us as the child's pidfd; we own it.
            pidfd: unsafe { OwnedFd::from_raw_fd(pidfd) },
        }),
    }
}

/// Brings `lo` up in the calling process's network namespace.
pub fn loopback_up() -> Result<(), Errno> {
    // SAFETY: a plain socket(2) call; the fd is closed below.
    let sock = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if sock < 0 {
        return Err(Errno::last());
    }
    // SAFETY: the kernel returned `sock`; OwnedFd closes it when dropped.
    let _guard = unsafe { OwnedFd::from_raw_fd(sock) };
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS / SIOCSIFFLAGS read and write the ifreq we own.
    unsafe {
        if libc::ioctl(sock, libc::SIOCGIFFLAGS, &mut req) < 0 {
            return Err(Errno::last());
        }
        req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
        if libc::ioctl(sock, libc::SIOCSIFFLAGS, &req) < 0 {
            return Err(Errno::last());
        }
    }
    Ok(())
}

/// Moves the caller into a new network namespace with lo up. With `low_ports`, any user in it may bind
/// ports below 1024: root in a sandbox's user namespace has no CAP_NET_BIND_SERVICE over a namespace
/// the initial one owns.
pub fn new_network(low_ports: bool) -> Result<(), Errno> {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)?;
    loopback_up()?;
    if low_ports {
        // /proc/sys/net is the caller's network namespace's.
        std::fs::write("/proc/sys/net/ipv4/ip_unprivileged_port_start", "0")
            .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
    }
    Ok(())
}

/// fork(2) into new `namespaces` whose child becomes a sibling (CLONE_PARENT), so it is the spawner's
/// child and is reaped there: used by helpers after setns into a pid namespace (where only children
/// enter it) and to clone into a user namespace from a helper that prepared the others. Returns the
/// child's pid in the parent, None in the child.
pub fn clone_sibling(namespaces: u64) -> Result<Option<i32>, Errno> {
    let args = CloneArgs { flags: namespaces | libc::CLONE_PARENT as u64, ..Default::default() };
    // SAFETY: clone3 with no stack behaves like fork (see clone_into_namespaces); the caller is a
    // single-threaded helper process.
    let rc = unsafe { libc::syscall(libc::SYS_clone3, &args as *const CloneArgs, std::mem::size_of::<CloneArgs>()) };
    match rc {
        -1 => Err(Errno::last()),
        0 => Ok(None),
        pid => Ok(Some(pid as i32)),
    }
}
