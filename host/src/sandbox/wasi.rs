//! The WASI interfaces kazi narrows, linked over wasmtime-wasi's own:
//!
//! - `wasi:filesystem/types`: every write is refused and *recorded* unless the grant
//!   allows writing; a path that leads outside the workspace is recorded as a denial;
//!   opening a FIFO, socket or device is refused (the open itself is non-blocking, so
//!   a FIFO can never hang an evaluation); open files are capped per evaluation.
//! - `wasi:filesystem/preopens`: besides `/workspace`, the guest sees a `/` whose
//!   every use is refused and recorded. Without it, a path outside every preopen
//!   (`/etc/passwd`) fails inside the guest's own libc and the host never sees it;
//!   with it, that read reaches the host and becomes a named denial. (It is a second
//!   handle on the workspace directory, so nothing leaks even if a use slipped by.)
//! - `wasi:sockets`: creating a socket and name lookup are refused and recorded (a
//!   predicate reaches the network only through `wasi:http` and its allow-list).
//!
//! A recorded denial makes the verdict `error` whatever the guest reports (SPEC §3.1).

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use wasmtime::component::{HasData, Linker, Resource};
use wasmtime_wasi::filesystem::{Descriptor, Dir, File, WasiFilesystemCtxView};
use wasmtime_wasi::p2::bindings::filesystem::preopens;
use wasmtime_wasi::p2::bindings::filesystem::types::{
    self, DescriptorFlags, ErrorCode, HostDescriptor, HostDirectoryEntryStream, OpenFlags,
    PathFlags,
};
use wasmtime_wasi::p2::bindings::sockets::{
    ip_name_lookup, network, tcp_create_socket, udp_create_socket,
};
use wasmtime_wasi::p2::{DynInputStream, DynOutputStream, FsError, FsResult, SocketResult};
use wasmtime_wasi::sockets::WasiSocketsCtxView;
use wasmtime_wasi::{FsPerms, OpenMode};

use super::state::{Denials, GuestState, shown};

/// Most files and directories one evaluation may hold open at once.
pub const MAX_OPEN_FILES: usize = 256;

/// What the filesystem wrapper needs from the guest's state.
pub struct FsGuard {
    pub denials: Denials,
    pub write_granted: bool,
    /// Files and directories the guest opened and has not closed (table indices).
    pub open_files: HashSet<u32>,
    /// Set when the guest hit [`MAX_OPEN_FILES`].
    pub limit_hit: Option<String>,
    /// The `/` preopen whose every use is a denial (created on first use).
    pub root: Option<Dir>,
}

impl FsGuard {
    /// A guard for a guest with or without write access.
    pub fn new(denials: Denials, write_granted: bool) -> Self {
        Self {
            denials,
            write_granted,
            open_files: HashSet::new(),
            limit_hit: None,
            root: None,
        }
    }
}

impl FsGuard {
    fn deny_write(&self, what: &str, path: &str) -> FsError {
        self.denials.push(format!(
            "{what} `{}` in the workspace is not granted; hint: add `fs = \"write\"` under [predicate.allow] if it must write",
            shown(path)
        ));
        ErrorCode::NotPermitted.into()
    }

    /// A `NotPermitted` from a read-only operation can only be an escape attempt (an
    /// absolute path, `..` above the root, a symlink to outside): record it.
    fn note_escape<T>(&self, path: &str, r: FsResult<T>) -> FsResult<T> {
        if let Err(e) = &r
            && matches!(e.downcast_ref(), Some(ErrorCode::NotPermitted))
        {
            self.denials.push(format!(
                "reading `{}` is refused: it leads outside the workspace",
                shown(path)
            ));
        }
        r
    }
}

/// What kind of special file `ty` is (`None`: a regular file or a directory).
fn special_kind(ty: &cap_primitives::fs::FileType) -> Option<&'static str> {
    use cap_primitives::fs::FileTypeExt;
    if ty.is_file() || ty.is_dir() {
        None
    } else if ty.is_fifo() {
        Some("a FIFO")
    } else if ty.is_socket() {
        Some("a socket")
    } else if ty.is_char_device() || ty.is_block_device() {
        Some("a device")
    } else {
        Some("a special file")
    }
}

/// [`HasData`] for the narrowed filesystem.
pub struct GuardedFs;

impl HasData for GuardedFs {
    type Data<'a> = FsView<'a>;
}

/// wasmtime-wasi's filesystem view plus kazi's guard.
pub struct FsView<'a> {
    inner: WasiFilesystemCtxView<'a>,
    guard: &'a mut FsGuard,
}

fn fs_view(s: &mut GuestState) -> FsView<'_> {
    FsView {
        inner: WasiFilesystemCtxView {
            ctx: s.wasi.filesystem(),
            table: &mut s.table,
        },
        guard: &mut s.fs,
    }
}

/// [`HasData`] for the refused sockets.
pub struct DeniedSockets;

impl HasData for DeniedSockets {
    type Data<'a> = SocketsView<'a>;
}

/// wasmtime-wasi's sockets view plus the denial log.
pub struct SocketsView<'a> {
    inner: WasiSocketsCtxView<'a>,
    denials: &'a Denials,
}

fn sockets_view(s: &mut GuestState) -> SocketsView<'_> {
    SocketsView {
        inner: WasiSocketsCtxView {
            ctx: s.wasi.sockets(),
            table: &mut s.table,
        },
        denials: &s.denials,
    }
}

/// Link the narrowed interfaces over the ones `wasmtime_wasi::p2::add_to_linker_async`
/// defined.
pub fn link(linker: &mut Linker<GuestState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    types::add_to_linker::<GuestState, GuardedFs>(linker, fs_view)?;
    preopens::add_to_linker::<GuestState, GuardedFs>(linker, fs_view)?;
    tcp_create_socket::add_to_linker::<GuestState, DeniedSockets>(linker, sockets_view)?;
    udp_create_socket::add_to_linker::<GuestState, DeniedSockets>(linker, sockets_view)?;
    ip_name_lookup::add_to_linker::<GuestState, DeniedSockets>(linker, sockets_view)?;
    linker.allow_shadowing(false);
    Ok(())
}

const SOCKETS_HINT: &str = "a predicate reaches the network only through wasi:http; hint: use an HTTP request and grant its host with `net = [\"HOST:PORT\"]` under [predicate.allow]";

impl tcp_create_socket::Host for SocketsView<'_> {
    fn create_tcp_socket(
        &mut self,
        _family: network::IpAddressFamily,
    ) -> SocketResult<Resource<wasmtime_wasi::p2::TcpSocket>> {
        self.denials.push(format!(
            "opening a TCP socket is not granted: {SOCKETS_HINT}"
        ));
        Err(network::ErrorCode::AccessDenied.into())
    }
}

impl udp_create_socket::Host for SocketsView<'_> {
    async fn create_udp_socket(
        &mut self,
        _family: network::IpAddressFamily,
    ) -> SocketResult<Resource<wasmtime_wasi::p2::UdpSocket>> {
        self.denials.push(format!(
            "opening a UDP socket is not granted: {SOCKETS_HINT}"
        ));
        Err(network::ErrorCode::AccessDenied.into())
    }
}

impl network::Host for SocketsView<'_> {
    fn convert_error_code(
        &mut self,
        error: wasmtime_wasi::p2::SocketError,
    ) -> wasmtime::Result<network::ErrorCode> {
        network::Host::convert_error_code(&mut self.inner, error)
    }

    fn network_error_code(
        &mut self,
        err: Resource<wasmtime::Error>,
    ) -> wasmtime::Result<Option<network::ErrorCode>> {
        network::Host::network_error_code(&mut self.inner, err)
    }
}

impl network::HostNetwork for SocketsView<'_> {
    fn drop(&mut self, this: Resource<network::Network>) -> wasmtime::Result<()> {
        network::HostNetwork::drop(&mut self.inner, this)
    }
}

impl ip_name_lookup::Host for SocketsView<'_> {
    fn resolve_addresses(
        &mut self,
        _network: Resource<network::Network>,
        name: String,
    ) -> SocketResult<Resource<ip_name_lookup::ResolveAddressStream>> {
        self.denials.push(format!(
            "looking up the address of `{}` is not granted: {SOCKETS_HINT}",
            shown(&name)
        ));
        Err(network::ErrorCode::AccessDenied.into())
    }
}

impl ip_name_lookup::HostResolveAddressStream for SocketsView<'_> {
    fn resolve_next_address(
        &mut self,
        r: Resource<ip_name_lookup::ResolveAddressStream>,
    ) -> SocketResult<Option<network::IpAddress>> {
        ip_name_lookup::HostResolveAddressStream::resolve_next_address(&mut self.inner, r)
    }

    fn subscribe(
        &mut self,
        r: Resource<ip_name_lookup::ResolveAddressStream>,
    ) -> wasmtime::Result<Resource<wasmtime_wasi::p2::DynPollable>> {
        ip_name_lookup::HostResolveAddressStream::subscribe(&mut self.inner, r)
    }

    fn drop(&mut self, r: Resource<ip_name_lookup::ResolveAddressStream>) -> wasmtime::Result<()> {
        ip_name_lookup::HostResolveAddressStream::drop(&mut self.inner, r)
    }
}

impl types::Host for FsView<'_> {
    fn convert_error_code(&mut self, err: FsError) -> wasmtime::Result<ErrorCode> {
        types::Host::convert_error_code(&mut self.inner, err)
    }

    fn filesystem_error_code(
        &mut self,
        err: Resource<wasmtime::Error>,
    ) -> wasmtime::Result<Option<ErrorCode>> {
        types::Host::filesystem_error_code(&mut self.inner, err)
    }
}

impl preopens::Host for FsView<'_> {
    fn get_directories(&mut self) -> wasmtime::Result<Vec<(Resource<Descriptor>, String)>> {
        let mut dirs = preopens::Host::get_directories(&mut self.inner)?;
        if self.guard.root.is_none() {
            // A second handle on the workspace directory (see the module docs).
            let workspace = dirs
                .iter()
                .find_map(|(r, _)| match self.inner.table.get(r) {
                    Ok(Descriptor::Dir(d)) => d.dir.try_clone().ok(),
                    _ => None,
                });
            self.guard.root =
                workspace.map(|f| Dir::new(f, FsPerms::ReadOnly, OpenMode::READ, true));
        }
        if let Some(root) = &self.guard.root {
            let r = self.inner.table.push(Descriptor::Dir(root.clone()))?;
            dirs.push((r, "/".to_owned()));
        }
        Ok(dirs)
    }
}

impl HostDirectoryEntryStream for FsView<'_> {
    async fn read_directory_entry(
        &mut self,
        stream: Resource<types::DirectoryEntryStream>,
    ) -> FsResult<Option<types::DirectoryEntry>> {
        HostDirectoryEntryStream::read_directory_entry(&mut self.inner, stream).await
    }

    fn drop(&mut self, stream: Resource<types::DirectoryEntryStream>) -> wasmtime::Result<()> {
        HostDirectoryEntryStream::drop(&mut self.inner, stream)
    }
}

impl FsView<'_> {
    /// Refuse (and record) any use of the `/` preopen: `path` is relative to it.
    fn outside(&self, fd: &Resource<Descriptor>, path: &str) -> FsResult<()> {
        let Some(root) = &self.guard.root else {
            return Ok(());
        };
        match self.inner.table.get(fd)? {
            Descriptor::Dir(d) if Arc::ptr_eq(&d.dir, &root.dir) => {
                self.guard.denials.push(format!(
                    "reading `/{}` is refused: a predicate sees only the workspace, at /workspace",
                    shown(path.trim_start_matches('/'))
                ));
                Err(ErrorCode::NotPermitted.into())
            }
            _ => Ok(()),
        }
    }

    fn dir(&self, fd: &Resource<Descriptor>) -> FsResult<Dir> {
        match self.inner.table.get(fd)? {
            Descriptor::Dir(d) => Ok(d.clone()),
            Descriptor::File(_) => Err(ErrorCode::NotDirectory.into()),
        }
    }

    /// Refuse a write-type operation unless writing was granted.
    fn writable(&self, what: &str, path: &str) -> FsResult<()> {
        if self.guard.write_granted {
            Ok(())
        } else {
            Err(self.guard.deny_write(what, path))
        }
    }

    /// Open `path` under `dir` without ever blocking: `O_NONBLOCK`, then refuse
    /// anything that is neither a regular file nor a directory. Mirrors
    /// wasmtime-wasi's own `open_at` otherwise (same flags, same permission checks).
    fn open(
        &mut self,
        dir: &Dir,
        path_flags: PathFlags,
        path: &str,
        oflags: OpenFlags,
        flags: DescriptorFlags,
    ) -> FsResult<Descriptor> {
        use cap_primitives::fs::{FollowSymlinks, OpenOptions};
        let mut create = false;
        let mut open_mode = OpenMode::empty();
        let mut opts = OpenOptions::new();
        if oflags.contains(OpenFlags::CREATE) {
            if oflags.contains(OpenFlags::EXCLUSIVE) {
                opts.create_new(true);
            } else {
                opts.create(true);
            }
            create = true;
            opts.write(true);
            open_mode |= OpenMode::WRITE;
        }
        if oflags.contains(OpenFlags::TRUNCATE) {
            opts.truncate(true).write(true);
            open_mode |= OpenMode::WRITE;
        }
        if flags.contains(DescriptorFlags::READ) {
            opts.read(true);
            open_mode |= OpenMode::READ;
        }
        if flags.contains(DescriptorFlags::WRITE) {
            opts.write(true);
            open_mode |= OpenMode::WRITE;
        } else {
            opts.read(true);
            open_mode |= OpenMode::READ;
        }
        let follow = if path_flags.contains(PathFlags::SYMLINK_FOLLOW) {
            FollowSymlinks::Yes
        } else {
            FollowSymlinks::No
        };
        opts._cap_fs_ext_follow(follow);
        opts._cap_fs_ext_nonblock(true);
        if flags.contains(DescriptorFlags::FILE_INTEGRITY_SYNC)
            || flags.contains(DescriptorFlags::DATA_INTEGRITY_SYNC)
            || flags.contains(DescriptorFlags::REQUESTED_WRITE_SYNC)
        {
            return Err(ErrorCode::Unsupported.into());
        }
        if oflags.contains(OpenFlags::DIRECTORY)
            && (oflags.contains(OpenFlags::CREATE)
                || oflags.contains(OpenFlags::EXCLUSIVE)
                || oflags.contains(OpenFlags::TRUNCATE))
        {
            return Err(ErrorCode::Invalid.into());
        }
        if (create || open_mode.contains(OpenMode::WRITE))
            && (!self.guard.write_granted || dir.perms.write_not_permitted())
        {
            return Err(self.guard.deny_write("opening for writing", path));
        }
        if self.guard.open_files.len() >= MAX_OPEN_FILES {
            let msg = format!(
                "exceeded its limit of {MAX_OPEN_FILES} open files and directories (it opened `{}` without closing the others)",
                shown(path)
            );
            self.guard.limit_hit.get_or_insert(msg);
            return Err(ErrorCode::Quota.into());
        }
        let opened = match cap_primitives::fs::open(&dir.dir, Path::new(path), &opts) {
            Ok(f) => f,
            Err(e) => {
                // A socket cannot be opened at all: say what it is rather than pass on
                // an errno the guest renders as "I/O error".
                if let Ok(meta) = cap_primitives::fs::stat(&dir.dir, Path::new(path), follow)
                    && let Some(kind) = special_kind(&meta.file_type())
                {
                    return Err(self.refuse_special(path, kind));
                }
                if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) {
                    let msg = "could not open a file: kazi ran out of file descriptors; hint: lower --jobs or raise `ulimit -n`";
                    self.guard.limit_hit.get_or_insert(msg.to_owned());
                }
                return self
                    .guard
                    .note_escape(path, Err(ErrorCode::from(&e).into()));
            }
        };
        let meta = cap_primitives::fs::Metadata::from_file(&opened)
            .map_err(|e| FsError::from(ErrorCode::from(&e)))?;
        let ty = meta.file_type();
        if let Some(kind) = special_kind(&ty) {
            return Err(self.refuse_special(path, kind));
        }
        if ty.is_dir() {
            Ok(Descriptor::Dir(Dir::new(
                opened, dir.perms, open_mode, true,
            )))
        } else if oflags.contains(OpenFlags::DIRECTORY) {
            Err(ErrorCode::NotDirectory.into())
        } else {
            Ok(Descriptor::File(File::new(
                opened, dir.perms, open_mode, true,
            )))
        }
    }

    /// Record the refusal to open a special file.
    fn refuse_special(&self, path: &str, kind: &str) -> FsError {
        self.guard.denials.push(format!(
            "opening `{}` is refused: it is {kind}, not a regular file (reading one can block forever); hint: point the predicate at a regular file",
            shown(path)
        ));
        ErrorCode::Access.into()
    }
}

impl HostDescriptor for FsView<'_> {
    async fn advise(
        &mut self,
        fd: Resource<Descriptor>,
        offset: types::Filesize,
        len: types::Filesize,
        advice: types::Advice,
    ) -> FsResult<()> {
        self.outside(&fd, "")?;
        HostDescriptor::advise(&mut self.inner, fd, offset, len, advice).await
    }

    async fn sync_data(&mut self, fd: Resource<Descriptor>) -> FsResult<()> {
        self.outside(&fd, "")?;
        HostDescriptor::sync_data(&mut self.inner, fd).await
    }

    async fn get_flags(&mut self, fd: Resource<Descriptor>) -> FsResult<DescriptorFlags> {
        self.outside(&fd, "")?;
        HostDescriptor::get_flags(&mut self.inner, fd).await
    }

    async fn get_type(&mut self, fd: Resource<Descriptor>) -> FsResult<types::DescriptorType> {
        self.outside(&fd, "")?;
        HostDescriptor::get_type(&mut self.inner, fd).await
    }

    async fn set_size(&mut self, fd: Resource<Descriptor>, size: types::Filesize) -> FsResult<()> {
        self.outside(&fd, "")?;
        self.writable("resizing a file", "(an open file)")?;
        HostDescriptor::set_size(&mut self.inner, fd, size).await
    }

    async fn set_times(
        &mut self,
        fd: Resource<Descriptor>,
        atim: types::NewTimestamp,
        mtim: types::NewTimestamp,
    ) -> FsResult<()> {
        self.outside(&fd, "")?;
        self.writable("changing the times of", "(an open file)")?;
        HostDescriptor::set_times(&mut self.inner, fd, atim, mtim).await
    }

    async fn read(
        &mut self,
        fd: Resource<Descriptor>,
        len: types::Filesize,
        offset: types::Filesize,
    ) -> FsResult<(Vec<u8>, bool)> {
        self.outside(&fd, "")?;
        HostDescriptor::read(&mut self.inner, fd, len, offset).await
    }

    async fn write(
        &mut self,
        fd: Resource<Descriptor>,
        buf: Vec<u8>,
        offset: types::Filesize,
    ) -> FsResult<types::Filesize> {
        self.outside(&fd, "")?;
        self.writable("writing", "(an open file)")?;
        HostDescriptor::write(&mut self.inner, fd, buf, offset).await
    }

    async fn read_directory(
        &mut self,
        fd: Resource<Descriptor>,
    ) -> FsResult<Resource<types::DirectoryEntryStream>> {
        self.outside(&fd, "")?;
        HostDescriptor::read_directory(&mut self.inner, fd).await
    }

    async fn sync(&mut self, fd: Resource<Descriptor>) -> FsResult<()> {
        self.outside(&fd, "")?;
        HostDescriptor::sync(&mut self.inner, fd).await
    }

    async fn create_directory_at(
        &mut self,
        fd: Resource<Descriptor>,
        path: String,
    ) -> FsResult<()> {
        self.outside(&fd, &path)?;
        self.writable("creating the directory", &path)?;
        HostDescriptor::create_directory_at(&mut self.inner, fd, path).await
    }

    async fn stat(&mut self, fd: Resource<Descriptor>) -> FsResult<types::DescriptorStat> {
        self.outside(&fd, "")?;
        HostDescriptor::stat(&mut self.inner, fd).await
    }

    async fn stat_at(
        &mut self,
        fd: Resource<Descriptor>,
        path_flags: PathFlags,
        path: String,
    ) -> FsResult<types::DescriptorStat> {
        self.outside(&fd, &path)?;
        let shown_path = path.clone();
        let r = HostDescriptor::stat_at(&mut self.inner, fd, path_flags, path).await;
        self.guard.note_escape(&shown_path, r)
    }

    async fn set_times_at(
        &mut self,
        fd: Resource<Descriptor>,
        path_flags: PathFlags,
        path: String,
        atim: types::NewTimestamp,
        mtim: types::NewTimestamp,
    ) -> FsResult<()> {
        self.outside(&fd, &path)?;
        self.writable("changing the times of", &path)?;
        HostDescriptor::set_times_at(&mut self.inner, fd, path_flags, path, atim, mtim).await
    }

    async fn link_at(
        &mut self,
        fd: Resource<Descriptor>,
        old_path_flags: PathFlags,
        old_path: String,
        new_descriptor: Resource<Descriptor>,
        new_path: String,
    ) -> FsResult<()> {
        self.outside(&fd, &old_path)?;
        self.outside(&new_descriptor, &new_path)?;
        self.writable("creating the link", &new_path)?;
        HostDescriptor::link_at(
            &mut self.inner,
            fd,
            old_path_flags,
            old_path,
            new_descriptor,
            new_path,
        )
        .await
    }

    async fn open_at(
        &mut self,
        fd: Resource<Descriptor>,
        path_flags: PathFlags,
        path: String,
        oflags: OpenFlags,
        flags: DescriptorFlags,
    ) -> FsResult<Resource<Descriptor>> {
        self.outside(&fd, &path)?;
        let dir = self.dir(&fd)?;
        let opened = self.open(&dir, path_flags, &path, oflags, flags)?;
        let fd = self.inner.table.push(opened)?;
        self.guard.open_files.insert(fd.rep());
        Ok(fd)
    }

    fn drop(&mut self, fd: Resource<Descriptor>) -> wasmtime::Result<()> {
        self.guard.open_files.remove(&fd.rep());
        HostDescriptor::drop(&mut self.inner, fd)
    }

    async fn readlink_at(&mut self, fd: Resource<Descriptor>, path: String) -> FsResult<String> {
        self.outside(&fd, &path)?;
        let shown_path = path.clone();
        let r = HostDescriptor::readlink_at(&mut self.inner, fd, path).await;
        self.guard.note_escape(&shown_path, r)
    }

    async fn remove_directory_at(
        &mut self,
        fd: Resource<Descriptor>,
        path: String,
    ) -> FsResult<()> {
        self.outside(&fd, &path)?;
        self.writable("removing the directory", &path)?;
        HostDescriptor::remove_directory_at(&mut self.inner, fd, path).await
    }

    async fn rename_at(
        &mut self,
        fd: Resource<Descriptor>,
        old_path: String,
        new_fd: Resource<Descriptor>,
        new_path: String,
    ) -> FsResult<()> {
        self.outside(&fd, &old_path)?;
        self.outside(&new_fd, &new_path)?;
        self.writable("renaming", &old_path)?;
        HostDescriptor::rename_at(&mut self.inner, fd, old_path, new_fd, new_path).await
    }

    async fn symlink_at(
        &mut self,
        fd: Resource<Descriptor>,
        src_path: String,
        dest_path: String,
    ) -> FsResult<()> {
        self.outside(&fd, &dest_path)?;
        self.writable("creating the symlink", &dest_path)?;
        HostDescriptor::symlink_at(&mut self.inner, fd, src_path, dest_path).await
    }

    async fn unlink_file_at(&mut self, fd: Resource<Descriptor>, path: String) -> FsResult<()> {
        self.outside(&fd, &path)?;
        self.writable("removing the file", &path)?;
        HostDescriptor::unlink_file_at(&mut self.inner, fd, path).await
    }

    fn read_via_stream(
        &mut self,
        fd: Resource<Descriptor>,
        offset: types::Filesize,
    ) -> FsResult<Resource<DynInputStream>> {
        self.outside(&fd, "")?;
        HostDescriptor::read_via_stream(&mut self.inner, fd, offset)
    }

    fn write_via_stream(
        &mut self,
        fd: Resource<Descriptor>,
        offset: types::Filesize,
    ) -> FsResult<Resource<DynOutputStream>> {
        self.outside(&fd, "")?;
        self.writable("writing", "(an open file)")?;
        HostDescriptor::write_via_stream(&mut self.inner, fd, offset)
    }

    fn append_via_stream(
        &mut self,
        fd: Resource<Descriptor>,
    ) -> FsResult<Resource<DynOutputStream>> {
        self.outside(&fd, "")?;
        self.writable("appending to", "(an open file)")?;
        HostDescriptor::append_via_stream(&mut self.inner, fd)
    }

    async fn is_same_object(
        &mut self,
        a: Resource<Descriptor>,
        b: Resource<Descriptor>,
    ) -> wasmtime::Result<bool> {
        HostDescriptor::is_same_object(&mut self.inner, a, b).await
    }

    async fn metadata_hash(
        &mut self,
        fd: Resource<Descriptor>,
    ) -> FsResult<types::MetadataHashValue> {
        self.outside(&fd, "")?;
        HostDescriptor::metadata_hash(&mut self.inner, fd).await
    }

    async fn metadata_hash_at(
        &mut self,
        fd: Resource<Descriptor>,
        path_flags: PathFlags,
        path: String,
    ) -> FsResult<types::MetadataHashValue> {
        self.outside(&fd, &path)?;
        let shown_path = path.clone();
        let r = HostDescriptor::metadata_hash_at(&mut self.inner, fd, path_flags, path).await;
        self.guard.note_escape(&shown_path, r)
    }
}
