// SPDX-License-Identifier: GPL-2.0

//! Backing block devices, guest pages mapped by grant, and bios.
//!
//! Memory safety across asynchronous I/O: a bio points at pages of a [`GrantPages`];
//! submitting marks the pages' [`IoSlot`] busy until the bio completes, and while busy
//! the pages can be neither unmapped nor freed (dropping them then leaks them instead).

use super::bindings;
use super::worker::{DeferredJob, WorkerRef};
use core::sync::atomic::{AtomicBool, AtomicI32, AtomicPtr, AtomicU32, AtomicU64, Ordering};
use kernel::error::{to_result, Error};
use kernel::prelude::*;
use kernel::sync::Arc;

/// Segments of a direct request.
pub const DIRECT_SEGMENTS: usize = 11;

/// Most grants the C side maps or unmaps in one call (`RBLK_GRANT_BATCH`).
const GRANT_BATCH: usize = bindings::RBLK_GRANT_BATCH as usize;

/// `-EOPNOTSUPP` (the device cannot do the operation), which the kernel crate of 6.12 does
/// not name: from the kernel's own header, through the shim.
pub const EOPNOTSUPP_ERRNO: i32 = -(bindings::rblk_errno_RBLK_ERRNO_EOPNOTSUPP as i32);

/// A backing block device opened from `major:minor`; closed on drop.
///
/// # Invariants
///
/// `self.0` is a valid pointer to an open `struct file` of a block device, from
/// `rblk_bdev_open`, owned by this handle and closed only on drop.
pub struct BlockDevice(*mut bindings::file);

// SAFETY: a `struct file` of a block device may be used and released on any thread.
unsafe impl Send for BlockDevice {}
// SAFETY: the queries below only read block device properties.
unsafe impl Sync for BlockDevice {}

impl BlockDevice {
    /// Opens the device read-only or read-write.
    pub fn open(major: u32, minor: u32, writable: bool) -> Result<Self> {
        let mut err = 0;
        // SAFETY: no preconditions beyond a valid out-pointer.
        let f = unsafe { bindings::rblk_bdev_open(major, minor, writable, &mut err) };
        if f.is_null() {
            return Err(if err != 0 {
                Error::from_errno(err)
            } else {
                ENODEV
            });
        }
        // INVARIANT: `f` is not null, so `rblk_bdev_open` opened the device; the file's
        // reference is ours alone.
        Ok(Self(f))
    }

    /// Size in 512-byte sectors.
    pub fn sectors(&self) -> u64 {
        // SAFETY: the file is open (type invariant).
        unsafe { bindings::rblk_bdev_sectors(self.0) }
    }

    /// Logical block size in bytes.
    pub fn logical_block_size(&self) -> u32 {
        // SAFETY: the file is open (type invariant).
        unsafe { bindings::rblk_bdev_logical_block_size(self.0) }
    }

    /// Physical block size in bytes.
    pub fn physical_block_size(&self) -> u32 {
        // SAFETY: the file is open (type invariant).
        unsafe { bindings::rblk_bdev_physical_block_size(self.0) }
    }

    /// Whether the device itself is read-only.
    pub fn read_only(&self) -> bool {
        // SAFETY: the file is open (type invariant).
        unsafe { bindings::rblk_bdev_read_only(self.0) }
    }

    /// Whether the device has a volatile write cache (so flushes mean something).
    pub fn write_cache(&self) -> bool {
        // SAFETY: the file is open (type invariant).
        unsafe { bindings::rblk_bdev_write_cache(self.0) }
    }

    /// The kernel name of the whole disk the device is on (`vdb` for `/dev/vdb3`), cut to
    /// `buf`'s size less one; the bytes written to `buf`.
    pub fn disk_name<'b>(&self, buf: &'b mut [u8]) -> &'b [u8] {
        // SAFETY: the file is open (type invariant); C writes at most `buf.len()` bytes.
        let n =
            unsafe { bindings::rblk_bdev_disk_name(self.0, buf.as_mut_ptr().cast(), buf.len()) };
        &buf[..n.min(buf.len())]
    }

    /// Whether the device says it is rotational.
    pub fn rotational(&self) -> bool {
        // SAFETY: the file is open (type invariant).
        unsafe { bindings::rblk_bdev_rotational(self.0) }
    }

    /// Requests the device's queue takes at once.
    pub fn queue_depth(&self) -> u32 {
        // SAFETY: the file is open (type invariant).
        unsafe { bindings::rblk_bdev_queue_depth(self.0) }
    }

    /// What the device can discard, or `None` if it cannot.
    pub fn discard_support(&self) -> Option<DiscardSupport> {
        // SAFETY: the file is open (type invariant).
        if unsafe { bindings::rblk_bdev_max_discard_sectors(self.0) } == 0 {
            return None;
        }
        Some(DiscardSupport {
            // SAFETY: the file is open (type invariant).
            granularity: unsafe { bindings::rblk_bdev_discard_granularity(self.0) },
            // SAFETY: the file is open (type invariant).
            alignment: unsafe { bindings::rblk_bdev_discard_alignment(self.0) },
            // SAFETY: the file is open (type invariant).
            secure: unsafe { bindings::rblk_bdev_max_secure_erase_sectors(self.0) } > 0,
        })
    }
}

/// A device's discard geometry, as advertised to the frontend.
#[derive(Clone, Copy)]
pub struct DiscardSupport {
    /// Discard allocation unit in bytes (`discard-granularity`).
    pub granularity: u32,
    /// Offset of the device start from that unit, in bytes (`discard-alignment`).
    pub alignment: u32,
    /// Whether secure erase is possible (`discard-secure`).
    pub secure: bool,
}

impl Drop for BlockDevice {
    fn drop(&mut self) {
        // SAFETY: by the type invariant the file is open and ours; it is closed only here,
        // once. Bios hold their own reference to the block device, so in-flight I/O is
        // unaffected.
        unsafe { bindings::rblk_bdev_close(self.0) }
    }
}

/// Something told of every completion of a tracker's bios, in the completion's context
/// (any context, possibly hard irq: it must not sleep), before the worker sees it.
pub trait IoCompletion: Send + Sync {
    /// The bio of request slot `slot` (its [`IoSlot::index`]) completed with `err` (0 or
    /// -errno). Returns whether it dealt with the completion itself (answered the request),
    /// so that the worker need only be woken if it asked to be ([`IoTracker::wake_me`]).
    fn completed(&self, slot: usize, err: i32) -> bool;
}

/// Counts a ring's in-flight bios, records which request slots completed, and wakes its
/// worker when one completes.
///
/// # Invariants
///
/// - `in_flight` counts the bios submitted through the tracker's slots and not yet
///   completed; each holds a reference on the tracker (through its [`IoSlot`]).
/// - `on_idle` is null or a job from `DeferredJob::into_raw` owned by the tracker: it is
///   only taken out by a swap, and whoever swaps it out owns it.
pub struct IoTracker {
    worker: WorkerRef,
    in_flight: AtomicU32,
    hook: Option<Arc<dyn IoCompletion>>,
    /// The worker waits for a completion (it stopped for want of a free slot, or to drain
    /// the ring): wake it even for completions the hook dealt with.
    wake_worker: AtomicBool,
    /// One bit per request slot whose bio completed since the worker last took it
    /// ([`IoTracker::take_completed_slots`]): the worker finds completions without looking
    /// at every slot.
    completed: KVec<AtomicU64>,
    /// The job of [`IoTracker::when_idle`], until the call or the last completion takes it
    /// (whichever comes second sees it; a swap decides).
    on_idle: AtomicPtr<bindings::rblk_deferred>,
}

impl IoTracker {
    /// A tracker for `slots` request slots that kicks `worker` on every completion, after
    /// telling `hook`.
    pub fn new(
        worker: WorkerRef,
        hook: Option<Arc<dyn IoCompletion>>,
        slots: usize,
    ) -> Result<Arc<Self>> {
        let mut completed = KVec::with_capacity(slots.div_ceil(64), GFP_KERNEL)?;
        for _ in 0..slots.div_ceil(64) {
            completed.push(AtomicU64::new(0), GFP_KERNEL)?;
        }
        // INVARIANT: no bio is submitted yet and no job is stored.
        Ok(Arc::new(
            Self {
                worker,
                in_flight: AtomicU32::new(0),
                hook,
                wake_worker: AtomicBool::new(false),
                completed,
                on_idle: AtomicPtr::new(core::ptr::null_mut()),
            },
            GFP_KERNEL,
        )?)
    }

    /// Bios submitted and not yet completed.
    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Acquire)
    }

    /// Whether every completion must wake the worker (`true` before it sleeps waiting for
    /// one; it must then check for completions that came before this call). Without it,
    /// completions the hook dealt with leave the worker asleep: it reaps them the next time
    /// it runs, which saves a thread wake-up per I/O.
    pub fn wake_me(&self, on_every_completion: bool) {
        self.wake_worker
            .store(on_every_completion, Ordering::SeqCst);
    }

    /// Words of the completion bitmap: slot `64 * w + b` is bit `b` of word `w`.
    pub fn completion_words(&self) -> usize {
        self.completed.len()
    }

    /// Takes word `word` of the bitmap of slots whose bio completed since the last call;
    /// each slot's [`IoSlot::take_completion`] then has its result. A plain load first:
    /// the worker looks on every pass, and mostly finds nothing.
    pub fn take_completed_slots(&self, word: usize) -> u64 {
        match self.completed.get(word) {
            Some(bits) if bits.load(Ordering::Acquire) != 0 => bits.swap(0, Ordering::AcqRel),
            _ => 0,
        }
    }

    /// Whether some slot's completion is not taken yet.
    pub fn any_completed(&self) -> bool {
        self.completed
            .iter()
            .any(|bits| bits.load(Ordering::SeqCst) != 0)
    }

    /// Records that slot `index`'s bio completed (after its `done` is set).
    fn mark_completed(&self, index: usize) {
        if let Some(bits) = self.completed.get(index / 64) {
            bits.fetch_or(1 << (index % 64), Ordering::SeqCst);
        }
    }

    /// Runs `job` once no bio is in flight and no more will be submitted (the caller
    /// stopped every submitter): at once on the calling thread if none is in flight, else
    /// on the module's deferred workqueue after the last completion. Nothing waits, so a
    /// device that never completes its I/O holds only what `job` owns, not the caller.
    /// Returns whether the job was deferred.
    pub fn when_idle(&self, job: DeferredJob) -> bool {
        let raw = job.into_raw();
        // Publish the job, then look: paired with the last completion's decrement, then
        // look (both sequentially consistent), so at least one of the two sees the other.
        let previous = self.on_idle.swap(raw, Ordering::SeqCst);
        if !previous.is_null() {
            // SAFETY: a job stored by an earlier call that neither it nor a completion took;
            // the swap made it ours (type invariant).
            drop(unsafe { DeferredJob::from_raw(previous) });
        }
        if self.in_flight.load(Ordering::SeqCst) == 0 {
            let job = self.on_idle.swap(core::ptr::null_mut(), Ordering::SeqCst);
            if !job.is_null() {
                // SAFETY: the swap gave us the job stored above; no one else can take it.
                unsafe { DeferredJob::from_raw(job) }.run_now();
                return false;
            }
        }
        true
    }

    /// Called by the completion that leaves no bio in flight: queues the job of
    /// [`IoTracker::when_idle`], if one waits and the call did not take it.
    fn last_completion(&self) {
        let job = self.on_idle.swap(core::ptr::null_mut(), Ordering::SeqCst);
        if !job.is_null() {
            // SAFETY: the swap gave us the job `when_idle` stored; no one else can take it.
            unsafe { DeferredJob::from_raw(job) }.queue();
        }
    }
}

impl Drop for IoTracker {
    fn drop(&mut self) {
        let job = *self.on_idle.get_mut();
        if !job.is_null() {
            // SAFETY: by the type invariant, a job no one took is still ours, and it never
            // runs: nothing is in flight any more to start it, or that bio would still hold
            // a reference on the tracker.
            drop(unsafe { DeferredJob::from_raw(job) });
        }
    }
}

/// The completion record of one request slot.
///
/// # Invariants
///
/// `busy` is true from just before each of the slot's bios is submitted until that bio
/// completes, so whenever a bio using the slot's pages is in flight. That takes one bio in
/// flight per slot at a time: [`submit`] and [`submit_discard`] refuse a busy slot, and
/// only the ring's worker submits.
pub struct IoSlot {
    tracker: Arc<IoTracker>,
    /// The request slot's number, passed to the tracker's completion hook.
    index: usize,
    busy: AtomicBool,
    done: AtomicBool,
    status: AtomicI32,
}

impl IoSlot {
    /// The record of request slot `index`, reporting to `tracker`.
    pub fn new(tracker: Arc<IoTracker>, index: usize) -> Result<Arc<Self>> {
        // INVARIANT: no bio of the new slot exists, and `busy` starts false.
        Ok(Arc::new(
            Self {
                tracker,
                index,
                busy: AtomicBool::new(false),
                done: AtomicBool::new(false),
                status: AtomicI32::new(0),
            },
            GFP_KERNEL,
        )?)
    }

    /// The request slot's number.
    pub fn index(&self) -> usize {
        self.index
    }

    /// If the slot's bio has completed since the last call, returns its result
    /// (0 or -errno) and forgets it.
    pub fn take_completion(&self) -> Option<i32> {
        if self.done.swap(false, Ordering::AcqRel) {
            Some(self.status.load(Ordering::Acquire))
        } else {
            None
        }
    }

    /// Whether a bio using the slot's pages is in flight.
    pub fn is_busy(&self) -> bool {
        self.busy.load(Ordering::Acquire)
    }

    fn complete(&self, err: i32) {
        self.status.store(err, Ordering::Release);
        // `busy` clears before `done` is seen, so the worker may unmap at once.
        self.busy.store(false, Ordering::Release);
        // The hook runs before `done` is set, so whatever it records (an answer already
        // sent) is visible to the worker when it sees the completion.
        let handled = self
            .tracker
            .hook
            .as_ref()
            .is_some_and(|hook| hook.completed(self.index, err));
        self.done.store(true, Ordering::SeqCst);
        self.tracker.mark_completed(self.index);
        // Paired with the worker's `wake_me(true)` and then looking for completions: either
        // it sees the slot's completion bit, or this sees its request to be woken.
        if !handled || self.tracker.wake_worker.load(Ordering::SeqCst) {
            self.tracker.worker.kick();
        }
        if self.tracker.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.tracker.last_completion();
        }
    }
}

/// A ring's pages for mapping the grants of requests (those that are not persistent):
/// pages in use by requests plus pages kept free for the next ones, never more than
/// `limit` in all. The limit is what bounds the dom0 memory a frontend can pin through
/// one ring, whatever its requests ask for: a request that would need more than is left
/// must wait until earlier ones complete and give theirs back.
///
/// Pages come from the grant page allocator (`gnttab_alloc_pages`): they are dom0's
/// memory handed back to Xen while a guest page is mapped over them.
///
/// # Invariants
///
/// `free.len()` is the limit and `in_use + nr_free` never passes it; the first `nr_free`
/// entries of `free` are pages from `rblk_pages_alloc`, owned by the pool, neither mapped
/// nor used by any bio.
pub struct PagePool {
    /// `limit` entries; the first `nr_free` are free pages.
    free: KVec<*mut bindings::page>,
    nr_free: usize,
    in_use: usize,
}

// SAFETY: the free pages are ours (allocated from the grant page pool, not mapped) and may
// be used and freed from any thread.
unsafe impl Send for PagePool {}

impl PagePool {
    /// An empty pool that will hold at most `limit` pages.
    pub fn new(limit: usize) -> Result<Self> {
        // INVARIANT: the pool holds no page, and none is in use.
        Ok(Self {
            free: KVec::from_elem(core::ptr::null_mut(), limit, GFP_KERNEL)?,
            nr_free: 0,
            in_use: 0,
        })
    }

    /// Pages allocated: in use plus free.
    pub fn allocated(&self) -> usize {
        self.in_use + self.nr_free
    }

    /// Whether `nr` more pages can be taken now without passing the limit.
    pub fn can_take(&self, nr: usize) -> bool {
        self.in_use
            .checked_add(nr)
            .is_some_and(|total| total <= self.free.len())
    }

    /// Fills `out` with pages, free ones first, allocating the rest. Refused (with
    /// `EBUSY`) if that would pass the limit.
    fn take(&mut self, out: &mut [*mut bindings::page]) -> Result {
        if !self.can_take(out.len()) {
            return Err(EBUSY);
        }
        let reused = out.len().min(self.nr_free);
        let first_free = self.nr_free - reused;
        let (from_free, to_allocate) = out.split_at_mut(reused);
        from_free.copy_from_slice(&self.free[first_free..self.nr_free]);
        if !to_allocate.is_empty() {
            // SAFETY: `to_allocate` has room for its length of page pointers, which C fills
            // on success (and leaves to us to free) or leaves unallocated on failure.
            to_result(unsafe {
                bindings::rblk_pages_alloc(to_allocate.len() as u32, to_allocate.as_mut_ptr())
            })?;
        }
        // Only now: on failure the reused pages are still in `free`.
        self.nr_free = first_free;
        self.in_use += out.len();
        Ok(())
    }

    /// Takes back pages from [`PagePool::take`], no longer mapped or used by any bio.
    fn give_back(&mut self, pages: &[*mut bindings::page]) {
        // `in_use + nr_free` never passes `limit`, so the pages fit.
        let end = self.nr_free + pages.len();
        if let Some(room) = self.free.get_mut(self.nr_free..end) {
            room.copy_from_slice(pages);
            self.nr_free = end;
            self.in_use = self.in_use.saturating_sub(pages.len());
        }
    }

    /// Frees free pages until at most `keep` remain.
    pub fn shrink_to(&mut self, keep: usize) {
        if self.nr_free <= keep {
            return;
        }
        let excess = self.nr_free - keep;
        if let Some(tail) = self.free.get_mut(keep..self.nr_free) {
            // SAFETY: free pages came from `rblk_pages_alloc` and are unmapped and unused
            // (type invariant); they leave the pool just below.
            unsafe { bindings::rblk_pages_free(excess as u32, tail.as_mut_ptr()) };
            self.nr_free = keep;
        }
    }
}

impl Drop for PagePool {
    fn drop(&mut self) {
        // Pages still in use belong to their `GrantPages`, which frees (or leaks) them.
        self.shrink_to(0);
    }
}

/// Pages into which a request's granted guest pages are mapped: taken from the ring's
/// [`PagePool`] when the request is mapped, given back when it is unmapped.
///
/// # Invariants
///
/// `handles` has an entry per page and `mapped` is at most their number; the first `mapped`
/// entries of `pages` are pages from `rblk_pages_alloc` (taken from a pool), owned by this
/// value and mapped onto a guest's grants with the handles at the same index. They are not
/// unmapped while `io` is busy.
pub struct GrantPages {
    /// `capacity` entries; the first `mapped` are pages taken from the pool and mapped.
    pages: KVec<*mut bindings::page>,
    handles: KVec<u32>,
    mapped: usize,
    io: Arc<IoSlot>,
}

// SAFETY: the pages are ours (taken from the grant page pool) and may be used, mapped and
// freed from any thread.
unsafe impl Send for GrantPages {}
// SAFETY: `&GrantPages` gives no access to the pages' contents.
unsafe impl Sync for GrantPages {}

impl GrantPages {
    /// Room for up to `capacity` grants, completing into `io`. Holds no page until mapped.
    pub fn new(io: Arc<IoSlot>, capacity: usize) -> Result<Self> {
        // INVARIANT: nothing is mapped yet; `handles` has as many entries as `pages`.
        Ok(Self {
            pages: KVec::from_elem(core::ptr::null_mut(), capacity, GFP_KERNEL)?,
            handles: KVec::from_elem(0, capacity, GFP_KERNEL)?,
            mapped: 0,
            io,
        })
    }

    /// The completion record of these pages.
    pub fn io(&self) -> &Arc<IoSlot> {
        &self.io
    }

    /// Maps `grefs` of domain `domid` (read-only when the device will only read them) onto
    /// pages taken from `pool`, all or nothing. `EBUSY` if the pool has not that many pages
    /// left; nothing is taken then.
    pub fn map(
        &mut self,
        pool: &mut PagePool,
        domid: u16,
        grefs: &[u32],
        readonly: bool,
    ) -> Result {
        if self.mapped != 0 || grefs.is_empty() || grefs.len() > self.pages.len() {
            return Err(EINVAL);
        }
        let taken = self.pages.get_mut(..grefs.len()).ok_or(EINVAL)?;
        pool.take(taken)?;
        let mut done = 0;
        while done < grefs.len() {
            let n = (grefs.len() - done).min(GRANT_BATCH);
            // SAFETY: pages `done..done + n` were taken from the pool above and are
            // unmapped; `grefs` and `handles` have entries there; the C side maps all `n`
            // or none.
            let r = to_result(unsafe {
                bindings::rblk_grants_map(
                    domid,
                    grefs.as_ptr().add(done),
                    self.pages.as_mut_ptr().add(done),
                    self.handles.as_mut_ptr().add(done),
                    n as u32,
                    readonly,
                )
            });
            if let Err(e) = r {
                // Undo the batches that did map: all or nothing for the request too.
                self.mapped = done;
                self.unmap_all();
                pool.give_back(&self.pages[..grefs.len()]);
                return Err(e);
            }
            done += n;
        }
        self.mapped = done;
        Ok(())
    }

    /// Copies `dst.len()` bytes at `offset` of mapped page `index` into `dst` (the
    /// private copy of an indirect segment page).
    pub fn read(&self, index: usize, offset: usize, dst: &mut [u8]) -> Result {
        let in_page = offset
            .checked_add(dst.len())
            .is_some_and(|end| end <= super::ring::XEN_PAGE_SIZE);
        if index >= self.mapped || !in_page {
            return Err(EINVAL);
        }
        // SAFETY: page `index` is mapped (index < mapped) and stays mapped while `&self`
        // is borrowed (unmapping needs `&mut self`); offset + len is within the page.
        unsafe {
            bindings::rblk_page_read(
                self.pages[index],
                offset as u32,
                dst.as_mut_ptr().cast(),
                dst.len() as u32,
            )
        };
        Ok(())
    }

    /// Unmaps the mapped grants and gives their pages back to `pool`. Refused while a bio
    /// uses the pages.
    pub fn unmap(&mut self, pool: &mut PagePool) -> Result {
        if self.io.is_busy() {
            return Err(EBUSY);
        }
        let n = self.mapped;
        self.unmap_all();
        pool.give_back(&self.pages[..n]);
        Ok(())
    }

    /// Unmaps the first `mapped` pages, in batches; they stay ours.
    fn unmap_all(&mut self) {
        let mut done = 0;
        while done < self.mapped {
            let n = (self.mapped - done).min(GRANT_BATCH);
            // SAFETY: pages `done..done + n` are mapped with `handles` there (type
            // invariant), and no I/O uses them (callers check the slot is not busy, or never
            // submitted any).
            unsafe {
                bindings::rblk_grants_unmap(
                    self.pages.as_mut_ptr().add(done),
                    self.handles.as_ptr().add(done),
                    n as u32,
                )
            };
            done += n;
        }
        self.mapped = 0;
    }
}

impl Drop for GrantPages {
    fn drop(&mut self) {
        let n = self.mapped;
        if n == 0 {
            return;
        }
        if self.io.is_busy() {
            // A bio still uses the pages: leaking them is the only safe choice.
            pr_warn!("leaking {} pages still under I/O\n", n);
            return;
        }
        // Still mapped (their pool may be gone): unmap and free them here.
        self.unmap_all();
        // SAFETY: the first `n` pages came from the pool's allocator, and are unmapped and
        // unused.
        unsafe { bindings::rblk_pages_free(n as u32, self.pages.as_mut_ptr()) }
    }
}

/// The page a bio segment reads or writes.
#[derive(Clone, Copy)]
pub enum SegmentPage {
    /// Page `n` of the request slot's [`GrantPages`] (mapped for this request only).
    Request(usize),
    /// The page of persistent grant slot `n` of the ring's [`PersistentPages`].
    Persistent(u16),
}

/// One segment of a bio: `len` bytes at `offset` of a mapped page.
#[derive(Clone, Copy)]
pub struct BioSegment {
    /// Which page.
    pub page: SegmentPage,
    /// Byte offset in the page.
    pub offset: u32,
    /// Bytes; `offset + len` is at most a page.
    pub len: u32,
}

impl BioSegment {
    /// A placeholder for preallocated segment tables.
    pub const EMPTY: BioSegment = BioSegment {
        page: SegmentPage::Request(0),
        offset: 0,
        len: 0,
    };
}

/// Grants a ring keeps mapped across requests (persistent grants), one page per slot.
///
/// Pages are allocated the first time their slot is mapped and kept until the ring goes:
/// a slot unmapped by a purge keeps its page for the next grant, so after warm-up mapping
/// new persistent grants allocates nothing. A slot's page cannot be unmapped while the last
/// bio that used it is in flight (the bio's [`IoSlot`] is busy); dropping the set then leaks
/// that page rather than freeing memory a device may still write.
///
/// # Invariants
///
/// - `pages`, `handles`, `mapped` and `users` have one entry per slot; every non-null page
///   is from `rblk_pages_alloc` and owned by the set.
/// - A slot whose `mapped` entry is set has its page mapped with its `handles` entry; its
///   `users` entry is `NO_USER` or the request slot whose bio last used the page, and the
///   page is not unmapped while that slot is busy.
/// - `ios[i]` is the record of request slot `i`, and there are fewer than `NO_USER`.
pub struct PersistentPages {
    pages: KVec<*mut bindings::page>,
    handles: KVec<u32>,
    mapped: KVec<bool>,
    /// The request slot whose bio last used each page (an index into `ios`), or [`NO_USER`].
    users: KVec<u16>,
    /// The completion records of the ring's request slots, by slot number: a page cannot
    /// be unmapped while its user's bio is in flight. Indices rather than references per
    /// page: recording a user then costs no reference count on the hot path.
    ios: KVec<Arc<IoSlot>>,
}

/// No bio has used the page since it was mapped (or since its last user completed).
const NO_USER: u16 = u16::MAX;

// SAFETY: the pages are ours (allocated from the grant page pool) and may be mapped,
// unmapped and freed from any thread.
unsafe impl Send for PersistentPages {}
// SAFETY: `&PersistentPages` only reads mapped pages into private buffers.
unsafe impl Sync for PersistentPages {}

impl PersistentPages {
    /// Room for `capacity` persistent grants, used by bios of the request slots whose
    /// completion records are `ios` (slot `i`'s at index `i`); allocates no page yet.
    pub fn new(capacity: usize, ios: KVec<Arc<IoSlot>>) -> Result<Self> {
        if ios.len() >= usize::from(NO_USER)
            || ios.iter().enumerate().any(|(i, io)| io.index() != i)
        {
            return Err(EINVAL);
        }
        // INVARIANT: no page is allocated or mapped yet; `ios` was checked just above.
        Ok(Self {
            pages: KVec::from_elem(core::ptr::null_mut(), capacity, GFP_KERNEL)?,
            handles: KVec::from_elem(0, capacity, GFP_KERNEL)?,
            mapped: KVec::from_elem(false, capacity, GFP_KERNEL)?,
            users: KVec::from_elem(NO_USER, capacity, GFP_KERNEL)?,
            ios,
        })
    }

    /// Whether the bio that last used slot `slot`'s page may still be in flight.
    fn in_use(&self, slot: usize) -> bool {
        match self.users.get(slot) {
            Some(&NO_USER) => false,
            // A user not in `ios` cannot be recorded; if it were, assume the worst.
            Some(&user) => self
                .ios
                .get(usize::from(user))
                .map_or(true, |io| io.is_busy()),
            None => true,
        }
    }

    /// The number under which `io` is recorded as a page's user: its slot number, if it is
    /// one of the ring's request slots.
    fn user_id(&self, io: &Arc<IoSlot>) -> Option<u16> {
        let registered = self.ios.get(io.index())?;
        if !Arc::ptr_eq(registered, io) {
            return None;
        }
        u16::try_from(io.index()).ok()
    }

    /// Whether slot `slot`'s page maps a grant.
    pub fn is_mapped(&self, slot: u16) -> bool {
        self.mapped.get(usize::from(slot)).copied().unwrap_or(false)
    }

    /// Maps each `(slot, gref)` of domain `domid` read-write into its slot's page, all or
    /// nothing. The slots must be unmapped.
    pub fn map(&mut self, domid: u16, entries: &[(u16, u32)]) -> Result {
        for &(slot, _) in entries {
            let slot = usize::from(slot);
            if slot >= self.pages.len() || self.mapped[slot] {
                return Err(EINVAL);
            }
            if self.pages[slot].is_null() {
                // SAFETY: room for one page pointer, which C fills on success.
                to_result(unsafe { bindings::rblk_pages_alloc(1, &mut self.pages[slot]) })?;
            }
        }
        let mut done = 0;
        while done < entries.len() {
            let batch = &entries[done..entries.len().min(done + GRANT_BATCH)];
            let mut grefs = [0u32; GRANT_BATCH];
            let mut pages = [core::ptr::null_mut(); GRANT_BATCH];
            let mut handles = [0u32; GRANT_BATCH];
            for (i, &(slot, gref)) in batch.iter().enumerate() {
                grefs[i] = gref;
                pages[i] = self.pages[usize::from(slot)];
            }
            // SAFETY: the first `batch.len()` pages are allocated (above) and unmapped; the
            // arrays have that many entries; the C side maps all of them or none.
            let r = to_result(unsafe {
                bindings::rblk_grants_map(
                    domid,
                    grefs.as_ptr(),
                    pages.as_mut_ptr(),
                    handles.as_mut_ptr(),
                    batch.len() as u32,
                    false,
                )
            });
            if let Err(e) = r {
                // All or nothing for the caller too: undo the batches that mapped.
                for &(slot, _) in &entries[..done] {
                    let _ = self.unmap(slot);
                }
                return Err(e);
            }
            for (i, &(slot, _)) in batch.iter().enumerate() {
                let slot = usize::from(slot);
                self.handles[slot] = handles[i];
                self.mapped[slot] = true;
                self.users[slot] = NO_USER;
            }
            done += batch.len();
        }
        Ok(())
    }

    /// Unmaps slot `slot`'s grant, keeping its page. Refused while a bio uses the page.
    pub fn unmap(&mut self, slot: u16) -> Result {
        let slot = usize::from(slot);
        if !self.mapped.get(slot).copied().unwrap_or(false) {
            return Err(EINVAL);
        }
        if self.in_use(slot) {
            return Err(EBUSY);
        }
        // SAFETY: the page is mapped with this handle, and no bio uses it (checked above;
        // bios are only submitted by the ring's single worker, which calls this).
        unsafe { bindings::rblk_grants_unmap(&mut self.pages[slot], &self.handles[slot], 1) };
        self.mapped[slot] = false;
        self.users[slot] = NO_USER;
        Ok(())
    }

    /// Forgets which request slot last used `slot`'s page, once that slot's bio is done, so
    /// that a later request in the same slot does not keep this page from being unmapped.
    pub fn finish_use(&mut self, slot: u16) {
        let slot = usize::from(slot);
        if !self.in_use(slot) {
            if let Some(user) = self.users.get_mut(slot) {
                *user = NO_USER;
            }
        }
    }

    /// Copies `dst.len()` bytes at `offset` of slot `slot`'s mapped page into `dst`.
    pub fn read(&self, slot: u16, offset: usize, dst: &mut [u8]) -> Result {
        let in_page = offset
            .checked_add(dst.len())
            .is_some_and(|end| end <= super::ring::XEN_PAGE_SIZE);
        if !self.is_mapped(slot) || !in_page {
            return Err(EINVAL);
        }
        // SAFETY: the page is mapped (checked) and stays mapped while `&self` is borrowed
        // (unmapping needs `&mut self`); offset + len is within the page.
        unsafe {
            bindings::rblk_page_read(
                self.pages[usize::from(slot)],
                offset as u32,
                dst.as_mut_ptr().cast(),
                dst.len() as u32,
            )
        };
        Ok(())
    }
}

impl Drop for PersistentPages {
    fn drop(&mut self) {
        for slot in 0..self.pages.len() {
            if self.mapped[slot] && self.unmap(slot as u16).is_err() {
                // A bio still uses the page: leaking it is the only safe choice.
                pr_warn!("leaking a persistent grant page still under I/O\n");
                self.pages[slot] = core::ptr::null_mut();
            }
            if !self.pages[slot].is_null() {
                // SAFETY: allocated in `map`, unmapped and unused.
                unsafe { bindings::rblk_pages_free(1, &mut self.pages[slot]) };
            }
        }
    }
}

/// What a bio does.
#[derive(Clone, Copy)]
pub enum BioKind {
    /// Read into the pages.
    Read,
    /// Write from the pages.
    Write,
    /// An empty cache flush.
    Flush,
    /// Flush the cache, then write from the pages.
    WritePreflush,
}

/// Submits one bio of `segments` (pages of the request slot's `pages` or of the ring's
/// persistent grants), or an empty flush. On completion the slot of `pages` records the
/// result and the tracker's worker is kicked. Persistent pages the bio uses cannot be
/// unmapped until it completes.
pub fn submit(
    bdev: &BlockDevice,
    kind: BioKind,
    sector: u64,
    pages: &GrantPages,
    persistent: Option<&mut PersistentPages>,
    segments: &[BioSegment],
) -> Result {
    let io = pages.io();
    if io.is_busy() {
        return Err(EBUSY);
    }
    let raw_kind = match kind {
        BioKind::Read => bindings::rblk_bio_kind_RBLK_BIO_READ,
        BioKind::Write => bindings::rblk_bio_kind_RBLK_BIO_WRITE,
        BioKind::Flush => bindings::rblk_bio_kind_RBLK_BIO_FLUSH,
        BioKind::WritePreflush => bindings::rblk_bio_kind_RBLK_BIO_WRITE_PREFLUSH,
    } as i32;
    let ctx = Arc::into_raw(io.clone());
    // SAFETY: the device is open (invariant of `BlockDevice`); `ctx` is an Arc reference
    // handed to the bio (released in `rblkback_bio_done`, or below if the bio is not
    // submitted).
    let bio = unsafe {
        bindings::rblk_bio_new(
            bdev.0,
            segments.len() as u32,
            raw_kind,
            sector,
            ctx as *mut _,
        )
    };
    if bio.is_null() {
        // SAFETY: the bio does not exist, so the reference is still ours.
        drop(unsafe { Arc::from_raw(ctx) });
        return Err(ENOMEM);
    }
    // One pass per segment: find its page (which must be mapped), add it, and record the
    // slot as the user of a persistent page, which then cannot be unmapped until this bio
    // completes. If a segment is refused, the bio is dropped unsubmitted; users recorded
    // by then only keep their pages mapped a little longer (until this slot's next I/O).
    let mut persistent = persistent;
    let mut user = None;
    for seg in segments {
        let in_page = seg
            .offset
            .checked_add(seg.len)
            .is_some_and(|end| end as usize <= super::ring::XEN_PAGE_SIZE);
        let page = match (seg.page, persistent.as_deref_mut()) {
            (SegmentPage::Request(index), _) if index < pages.mapped => Some(pages.pages[index]),
            (SegmentPage::Persistent(slot), Some(p)) if p.is_mapped(slot) => {
                let id = match user {
                    Some(id) => Some(id),
                    None => p.user_id(io),
                };
                user = id;
                match (id, p.users.get_mut(usize::from(slot))) {
                    (Some(id), Some(entry)) => {
                        *entry = id;
                        Some(p.pages[usize::from(slot)])
                    }
                    _ => None,
                }
            }
            _ => None,
        };
        let added = match page {
            Some(page) if in_page => {
                // SAFETY: `bio` is ours until submitted; the page is mapped and stays mapped
                // while the slot is busy: request pages cannot be unmapped while busy, and
                // persistent ones record this slot as their user (above).
                unsafe { bindings::rblk_bio_add_page(bio, page, seg.len, seg.offset) }
            }
            _ => false,
        };
        if !added {
            // SAFETY: never submitted, so we own the bio and the reference.
            unsafe { bindings::rblk_bio_drop_unsubmitted(bio) };
            // SAFETY: as above.
            drop(unsafe { Arc::from_raw(ctx) });
            return Err(EINVAL);
        }
    }
    // INVARIANT: the slot is busy and the bio counted before it is submitted; its completion
    // undoes both.
    io.busy.store(true, Ordering::Release);
    io.tracker.in_flight.fetch_add(1, Ordering::AcqRel);
    // SAFETY: a fully built bio; after this the completion owns `ctx`.
    unsafe { bindings::rblk_bio_submit(bio) };
    Ok(())
}

/// Submits a discard (`secure`: a secure erase) of `nr_sectors` at `sector`, completing
/// into `io` like a bio of [`submit`]. Returns `Ok(false)` if the range holds no whole
/// discard unit (nothing to do), `Err(EOPNOTSUPP)` if the device cannot do it (any more).
/// Never waits for the device.
pub fn submit_discard(
    bdev: &BlockDevice,
    io: &Arc<IoSlot>,
    sector: u64,
    nr_sectors: u64,
    secure: bool,
) -> Result<bool> {
    if io.is_busy() {
        return Err(EBUSY);
    }
    let ctx = Arc::into_raw(io.clone());
    let mut err = 0;
    // SAFETY: the device is open (invariant of `BlockDevice`); `ctx` is an Arc reference
    // handed to the bio (released in `rblkback_bio_done`, or below if there is no bio);
    // `err` is writable.
    let bio = unsafe {
        bindings::rblk_bio_discard_new(bdev.0, sector, nr_sectors, secure, ctx as *mut _, &mut err)
    };
    if bio.is_null() {
        // SAFETY: no bio holds the reference.
        drop(unsafe { Arc::from_raw(ctx) });
        to_result(err)?;
        return Ok(false);
    }
    // INVARIANT: the slot is busy and the bio counted before it is submitted; its completion
    // undoes both.
    io.busy.store(true, Ordering::Release);
    io.tracker.in_flight.fetch_add(1, Ordering::AcqRel);
    // SAFETY: a fully built bio; after this the completion owns `ctx`.
    unsafe { bindings::rblk_bio_submit(bio) };
    Ok(true)
}

/// Runs `f` with the calling thread's block plug started: the bios it submits reach the
/// device together when it returns (or when the thread sleeps), with one notification of
/// the device for the batch instead of one per bio.
pub fn with_plug<R, F: FnOnce() -> R>(f: F) -> R {
    let mut call = (Some(f), None);
    // SAFETY: `plugged_call::<R, F>` gets a pointer to `call`, which lives across the call
    // (C calls it exactly once, before returning).
    unsafe {
        bindings::rblk_with_plug(
            Some(plugged_call::<R, F>),
            &mut call as *mut (Option<F>, Option<R>) as *mut _,
        )
    };
    match call.1 {
        Some(result) => result,
        // C always calls back; if it did not, running `f` unplugged is still correct.
        None => match call.0.take() {
            Some(f) => f(),
            None => unreachable!(),
        },
    }
}

extern "C" fn plugged_call<R, F: FnOnce() -> R>(ctx: *mut core::ffi::c_void) {
    // SAFETY: `ctx` is the `(Option<F>, Option<R>)` of `with_plug`, borrowed by nobody
    // else while C runs this.
    let call = unsafe { &mut *(ctx as *mut (Option<F>, Option<R>)) };
    if let Some(f) = call.0.take() {
        call.1 = Some(f());
    }
}

/// Called by the C bio completion (any context) with the `ctx` given at submission.
#[no_mangle]
pub extern "C" fn rblkback_bio_done(ctx: *mut core::ffi::c_void, err: i32) {
    // SAFETY: `ctx` is the `Arc<IoSlot>` reference `submit` handed to this bio; each bio
    // completes exactly once, so the reference is taken back once.
    let io = unsafe { Arc::from_raw(ctx as *const IoSlot) };
    io.complete(err);
}

// The exported function must have exactly the type C was told about in block.h.
const _: unsafe extern "C" fn(*mut core::ffi::c_void, i32) = bindings::rblkback_bio_done;
