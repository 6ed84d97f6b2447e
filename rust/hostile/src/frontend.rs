//! The frontend side of the protocol: the xenbus handshake in xenstore, the shared ring
//! (producer of requests, consumer of responses) and the grant pages requests point at.

use crate::blkreq::{
    self, Layout, RawResponse, ENTRY_SIZE, REQ_EVENT, REQ_PROD, RSP_EVENT, RSP_PROD,
};
use crate::xen::{self, Evtchn, Gntalloc, GrantPages, PAGE_SIZE};
use crate::xenstore::Xenstore;
use crate::Error;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// xenbus states (`enum xenbus_state`).
pub(crate) mod state {
    /// `XenbusStateInitialising`.
    pub(crate) const INITIALISING: u32 = 1;
    /// `XenbusStateInitWait`.
    pub(crate) const INIT_WAIT: u32 = 2;
    /// `XenbusStateInitialised`.
    pub(crate) const INITIALISED: u32 = 3;
    /// `XenbusStateConnected`.
    pub(crate) const CONNECTED: u32 = 4;
    /// `XenbusStateClosing`.
    pub(crate) const CLOSING: u32 = 5;
    /// `XenbusStateClosed`.
    pub(crate) const CLOSED: u32 = 6;
}

/// The `protocol` value of the native (x86_64) layout.
pub(crate) const PROTOCOL_X86_64: &str = "x86_64-abi";
/// The `protocol` value of the 32-bit x86 layout.
pub(crate) const PROTOCOL_X86_32: &str = "x86_32-abi";

/// Data pages granted for the requests' buffers (one per ring slot, reused).
pub(crate) const DATA_PAGES: usize = 64;
/// Indirect segment pages granted (one per ring slot of a one-page ring).
pub(crate) const INDIRECT_PAGES: usize = 32;
/// How long a state change of the backend may take.
const STATE_TIMEOUT: Duration = Duration::from_secs(30);

/// The shared ring, from the frontend's side.
pub(crate) struct Ring {
    pages: GrantPages,
    /// The layout of its entries.
    layout: Layout,
    /// Number of entries.
    pub(crate) entries: u32,
    /// Next request index to fill (`req_prod_pvt`).
    pub(crate) req_prod_pvt: u32,
    /// Next response index to read (`rsp_cons`).
    pub(crate) rsp_cons: u32,
}

impl Ring {
    fn new(pages: GrantPages, layout: Layout) -> Ring {
        let entries = blkreq::ring_entries(pages.grefs().len(), layout);
        let mem = pages.mem();
        mem.fill(0);
        // SHARED_RING_INIT: producers 0, event indices 1.
        mem.write_u32(REQ_PROD, 0);
        mem.write_u32(REQ_EVENT, 1);
        mem.write_u32(RSP_PROD, 0);
        mem.write_u32(RSP_EVENT, 1);
        Ring {
            pages,
            layout,
            entries,
            req_prod_pvt: 0,
            rsp_cons: 0,
        }
    }

    fn offset(&self, index: u32) -> usize {
        blkreq::RING_HEADER_SIZE + (index & (self.entries - 1)) as usize * self.layout.entry_size()
    }

    /// Writes request `entry` (built in the x86_64 layout) at `index`, in the ring's layout.
    fn write_entry(&self, index: u32, entry: &[u8; ENTRY_SIZE]) {
        let bytes = self.layout.encode(entry);
        self.pages
            .mem()
            .write_bytes(self.offset(index), &bytes[..self.layout.entry_size()]);
    }

    /// Free request slots (entries not waiting for a response).
    pub(crate) fn free(&self) -> u32 {
        self.entries
            .saturating_sub(self.req_prod_pvt.wrapping_sub(self.rsp_cons))
    }

    /// Writes `entry` at the next request index; returns that index.
    pub(crate) fn put(&mut self, entry: &[u8; ENTRY_SIZE]) -> u32 {
        let index = self.req_prod_pvt;
        self.write_entry(index, entry);
        self.req_prod_pvt = index.wrapping_add(1);
        index
    }

    /// Overwrites the entry at `index` (already published or not).
    pub(crate) fn rewrite(&self, index: u32, entry: &[u8; ENTRY_SIZE]) {
        self.write_entry(index, entry);
    }

    /// Publishes every request put so far (`RING_PUSH_REQUESTS`).
    pub(crate) fn push(&self) {
        xen::write_barrier();
        self.pages.mem().write_u32(REQ_PROD, self.req_prod_pvt);
        xen::full_barrier();
    }

    /// Writes any value into `req_prod`.
    pub(crate) fn set_req_prod(&self, value: u32) {
        xen::write_barrier();
        self.pages.mem().write_u32(REQ_PROD, value);
        xen::full_barrier();
    }

    /// The backend's response producer.
    pub(crate) fn rsp_prod(&self) -> u32 {
        self.pages.mem().read_u32(RSP_PROD)
    }

    /// Takes every published response. A response producer more than a ring ahead of
    /// what was requested is a backend bug: reported as `Err` with the bogus value.
    pub(crate) fn take_responses(&mut self) -> Result<Vec<RawResponse>, u32> {
        let mut out = Vec::new();
        loop {
            let prod = self.rsp_prod();
            xen::read_barrier();
            let avail = prod.wrapping_sub(self.rsp_cons);
            if avail > self.req_prod_pvt.wrapping_sub(self.rsp_cons) {
                return Err(prod);
            }
            while self.rsp_cons != prod {
                let mut b = [0u8; 16];
                let size = self.layout.response_size();
                self.pages
                    .mem()
                    .read_bytes(self.offset(self.rsp_cons), &mut b[..size]);
                out.push(blkreq::decode_response(&b));
                self.rsp_cons = self.rsp_cons.wrapping_add(1);
            }
            // RING_FINAL_CHECK_FOR_RESPONSES: ask for an event at the next response.
            self.pages
                .mem()
                .write_u32(RSP_EVENT, self.rsp_cons.wrapping_add(1));
            xen::full_barrier();
            if self.rsp_prod() == self.rsp_cons {
                return Ok(out);
            }
        }
    }

    /// Grant references of the ring pages.
    pub(crate) fn grefs(&self) -> &[u32] {
        self.pages.grefs()
    }
}

/// What the backend published when it connected.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct BackendInfo {
    /// Disk size in 512-byte sectors.
    pub(crate) sectors: u64,
    /// Logical block size.
    pub(crate) sector_size: u32,
    /// `feature-max-indirect-segments` (0: none).
    pub(crate) max_indirect: u32,
    /// `max-ring-page-order` (0 if absent).
    pub(crate) max_order: u32,
}

/// One connection of the ring: event channel and backend details.
pub(crate) struct Connection {
    /// The ring.
    pub(crate) ring: Ring,
    /// Our event channel port.
    pub(crate) port: u32,
    /// What the backend offers.
    pub(crate) info: BackendInfo,
}

/// How requests of one batch were answered.
#[derive(Clone, Debug, Default)]
pub(crate) struct Tally {
    /// Requests put on the ring.
    pub(crate) sent: u64,
    /// `BLKIF_RSP_OKAY`.
    pub(crate) okay: u64,
    /// `BLKIF_RSP_ERROR`.
    pub(crate) error: u64,
    /// `BLKIF_RSP_EOPNOTSUPP`.
    pub(crate) eopnotsupp: u64,
    /// Any other status value.
    pub(crate) other_status: u64,
    /// Requests without a response when the wait ended.
    pub(crate) no_response: u64,
    /// Responses whose id we did not send (or had already been answered).
    pub(crate) unexpected: u64,
    /// Requests answered whose response we overwrote ourselves before reading it (the
    /// double-fetch case rewrites ring slots that responses reuse).
    pub(crate) status_lost: u64,
    /// Statuses per request id (for cases that need them).
    pub(crate) status_of: HashMap<u64, i16>,
    /// The backend's response producer ran ahead of our requests.
    pub(crate) bogus_rsp_prod: bool,
}

impl Tally {
    /// Adds another tally's counts.
    pub(crate) fn add(&mut self, o: &Tally) {
        self.sent += o.sent;
        self.okay += o.okay;
        self.error += o.error;
        self.eopnotsupp += o.eopnotsupp;
        self.other_status += o.other_status;
        self.no_response += o.no_response;
        self.unexpected += o.unexpected;
        self.status_lost += o.status_lost;
        self.bogus_rsp_prod |= o.bogus_rsp_prod;
        self.status_of
            .extend(o.status_of.iter().map(|(k, v)| (*k, *v)));
    }

    fn count(&mut self, status: i16) {
        match status {
            0 => self.okay += 1,
            -1 => self.error += 1,
            -2 => self.eopnotsupp += 1,
            _ => self.other_status += 1,
        }
    }
}

/// The frontend of one vbd of this domain.
pub(crate) struct Frontend {
    /// xenstore connection.
    pub(crate) xs: Xenstore,
    /// Our domain id.
    pub(crate) domid: u16,
    /// The vbd's device id.
    pub(crate) devid: u32,
    /// `device/vbd/<devid>` below our home (relative path).
    pub(crate) fe: String,
    /// The backend's directory.
    pub(crate) be: String,
    /// The backend's domain.
    pub(crate) backend_id: u16,
    /// gntalloc.
    pub(crate) gnt: Gntalloc,
    /// evtchn.
    pub(crate) evt: Evtchn,
    /// The current connection, if any.
    pub(crate) conn: Option<Connection>,
    /// Data pages (granted writable).
    pub(crate) data: GrantPages,
    /// Indirect segment pages.
    pub(crate) indirect: GrantPages,
    /// Connections made so far.
    pub(crate) connections: u32,
    /// How long to wait for responses without progress.
    pub(crate) timeout: Duration,
    /// The `protocol` key the next connection writes (`None`: no key, which the backend
    /// must take as `x86_32-abi`), and the layout that goes with it.
    pub(crate) protocol: (Option<&'static str>, Layout),
    next_id: u64,
}

/// The "key" of [`Frontend::connect_with`] that sets the ring's request producer.
pub(crate) const BAD_REQ_PROD: &str = "(ring) req_prod";
/// The "key" of [`Frontend::connect_with`] that is the frontend state written instead of
/// Initialised.
pub(crate) const BAD_STATE: &str = "(frontend) state";

impl Frontend {
    /// Opens the device files and finds the vbd (`devid`, or the only one).
    pub(crate) fn open(devid: Option<u32>, timeout: Duration) -> Result<Frontend, Error> {
        let mut xs = Xenstore::open().map_err(|e| Error(format!("/dev/xen/xenbus: {e}")))?;
        let domid: u16 = xs
            .read("domid")?
            .parse()
            .map_err(|_| Error("bad domid".into()))?;
        let devid = match devid {
            Some(d) => d,
            None => {
                let list = xs.directory("device/vbd")?;
                let first = list
                    .first()
                    .ok_or_else(|| Error("no vbd in device/vbd".into()))?;
                first
                    .parse()
                    .map_err(|_| Error(format!("bad vbd name {first}")))?
            }
        };
        let fe = format!("device/vbd/{devid}");
        let be = xs.read(&format!("{fe}/backend"))?;
        let backend_id: u16 = xs
            .read(&format!("{fe}/backend-id"))?
            .parse()
            .map_err(|_| Error("bad backend-id".into()))?;
        let gnt = Gntalloc::open().map_err(|e| Error(format!("/dev/xen/gntalloc: {e}")))?;
        let evt = Evtchn::open().map_err(|e| Error(format!("/dev/xen/evtchn: {e}")))?;
        let data = gnt.alloc(backend_id, DATA_PAGES, true)?;
        let indirect = gnt.alloc(backend_id, INDIRECT_PAGES, true)?;
        Ok(Frontend {
            xs,
            domid,
            devid,
            fe,
            be,
            backend_id,
            gnt,
            evt,
            conn: None,
            data,
            indirect,
            connections: 0,
            timeout,
            protocol: (Some(PROTOCOL_X86_64), Layout::X86_64),
            next_id: 1,
        })
    }

    /// A fresh request id.
    pub(crate) fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// The backend's xenbus state (0 if unreadable).
    pub(crate) fn backend_state(&mut self) -> u32 {
        let path = format!("{}/state", self.be);
        self.xs
            .try_read(&path)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }

    /// Writes our xenbus state.
    pub(crate) fn set_state(&mut self, s: u32) -> Result<(), Error> {
        let path = format!("{}/state", self.fe);
        self.xs.write(&path, &s.to_string())?;
        Ok(())
    }

    /// Waits until the backend's state is one of `want`; returns it, or the last state
    /// seen as an error after `timeout`.
    pub(crate) fn wait_backend(&mut self, want: &[u32], timeout: Duration) -> Result<u32, u32> {
        let deadline = Instant::now() + timeout;
        loop {
            let s = self.backend_state();
            if want.contains(&s) {
                return Ok(s);
            }
            if Instant::now() > deadline {
                return Err(s);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Brings the backend to InitWait from wherever it is: Closing → we write Closed;
    /// Closed → we write Initialising; Connected → close first.
    fn backend_to_init_wait(&mut self) -> Result<(), Error> {
        let deadline = Instant::now() + STATE_TIMEOUT * 2;
        let mut last_written = 0;
        loop {
            let s = self.backend_state();
            let write = match s {
                state::INIT_WAIT => return Ok(()),
                state::CONNECTED => state::CLOSING,
                state::CLOSING => state::CLOSED,
                state::CLOSED => state::INITIALISING,
                _ => 0,
            };
            if write != 0 && write != last_written {
                self.set_state(write)?;
                last_written = write;
            }
            if Instant::now() > deadline {
                return Err(Error(format!(
                    "backend {} stuck in state {s} (wanted InitWait)",
                    self.be
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Connects with a ring of `2^order` pages (`order` is written as `ring-page-order`
    /// unless it is 0 and `order_key` is false, in which case the single `ring-ref` key is
    /// used). Orders above 5 grant one page and write only `ring-ref0`: the backend must
    /// refuse them before reading any reference. `Ok(Err(state))` if the backend refused
    /// (went to Closing/Closed instead of Connected).
    pub(crate) fn connect(
        &mut self,
        order: u32,
        order_key: bool,
    ) -> Result<Result<(), u32>, Error> {
        self.connect_with(order, order_key, None)
    }

    /// [`connect`](Self::connect), with one key of the handshake given a bad value
    /// instead (`bad`: the key, relative to the frontend's directory, and its value),
    /// written after the good keys and before the state goes to Initialised; or, for
    /// [`BAD_REQ_PROD`], the new ring's request producer set to the value.
    pub(crate) fn connect_with(
        &mut self,
        order: u32,
        order_key: bool,
        bad: Option<(&str, &str)>,
    ) -> Result<Result<(), u32>, Error> {
        if self.conn.is_some() {
            self.close()?;
        }
        self.backend_to_init_wait()?;
        let pages = if order <= 5 { 1usize << order } else { 1 };
        let ring_pages = self.gnt.alloc(self.backend_id, pages, true)?;
        let ring = Ring::new(ring_pages, self.protocol.1);
        let port = self.evt.bind_unbound(self.backend_id)?;
        // Keys of an earlier connection must not linger.
        let fe = self.fe.clone();
        self.xs.remove(&format!("{fe}/ring-ref"))?;
        self.xs.remove(&format!("{fe}/ring-page-order"))?;
        self.xs.remove(&format!("{fe}/multi-queue-num-queues"))?;
        for i in 0..32 {
            self.xs.remove(&format!("{fe}/ring-ref{i}"))?;
        }
        if order == 0 && !order_key {
            self.xs
                .write(&format!("{fe}/ring-ref"), &ring.grefs()[0].to_string())?;
        } else {
            self.xs
                .write(&format!("{fe}/ring-page-order"), &order.to_string())?;
            for (i, g) in ring.grefs().iter().enumerate() {
                self.xs
                    .write(&format!("{fe}/ring-ref{i}"), &g.to_string())?;
            }
        }
        self.xs
            .write(&format!("{fe}/event-channel"), &port.to_string())?;
        match self.protocol.0 {
            Some(p) => self.xs.write(&format!("{fe}/protocol"), p)?,
            None => self.xs.remove(&format!("{fe}/protocol"))?,
        }
        match bad {
            // Not a key: the ring's own request producer, which the backend reads when it
            // maps the ring.
            Some((BAD_REQ_PROD, value)) => ring.set_req_prod(value.parse().unwrap_or(u32::MAX)),
            Some((BAD_STATE, _)) => {}
            Some((key, value)) => self.xs.write(&format!("{fe}/{key}"), value)?,
            None => {}
        }
        match bad {
            Some((BAD_STATE, value)) => self.xs.write(&format!("{fe}/state"), value)?,
            _ => self.set_state(state::INITIALISED)?,
        }
        self.connections += 1;
        let got = self.wait_backend(
            &[state::CONNECTED, state::CLOSING, state::CLOSED],
            STATE_TIMEOUT,
        );
        match got {
            Ok(state::CONNECTED) => {}
            Ok(s) | Err(s) => {
                let _ = self.evt.unbind(port);
                drop(ring);
                return Ok(Err(s));
            }
        }
        let be = self.be.clone();
        let num = |xs: &mut Xenstore, key: &str| -> u64 {
            xs.try_read(&format!("{be}/{key}"))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        let info = BackendInfo {
            sectors: num(&mut self.xs, "sectors"),
            sector_size: num(&mut self.xs, "sector-size") as u32,
            max_indirect: num(&mut self.xs, "feature-max-indirect-segments") as u32,
            max_order: num(&mut self.xs, "max-ring-page-order") as u32,
        };
        self.set_state(state::CONNECTED)?;
        self.conn = Some(Connection { ring, port, info });
        Ok(Ok(()))
    }

    /// Closes the connection the way blkfront does: Closing, wait, Closed, wait for the
    /// backend to be Closed; then revokes the ring and unbinds the port. Returns the
    /// backend's final state.
    pub(crate) fn close(&mut self) -> Result<u32, Error> {
        self.set_state(state::CLOSING)?;
        let _ = self.wait_backend(&[state::CLOSING, state::CLOSED], STATE_TIMEOUT);
        self.set_state(state::CLOSED)?;
        let s = self
            .wait_backend(&[state::CLOSED], STATE_TIMEOUT)
            .unwrap_or_else(|s| s);
        self.drop_connection();
        Ok(s)
    }

    /// Forgets the connection without telling the backend: revokes the ring pages and
    /// unbinds the port at once.
    pub(crate) fn drop_connection(&mut self) {
        if let Some(c) = self.conn.take() {
            let _ = self.evt.unbind(c.port);
            drop(c.ring);
        }
    }

    /// The current connection (panics if none: callers connect first).
    pub(crate) fn c(&mut self) -> &mut Connection {
        self.conn.as_mut().expect("not connected")
    }

    /// Notifies the backend.
    pub(crate) fn notify(&self) -> Result<(), Error> {
        if let Some(c) = &self.conn {
            self.evt.notify(c.port)?;
        }
        Ok(())
    }

    /// Grant reference of data page `i` (mod the pool).
    pub(crate) fn data_gref(&self, i: u32) -> u32 {
        self.data.grefs()[i as usize % DATA_PAGES]
    }

    /// A valid one-page READ at a sector derived from `id`, into data page `slot`.
    pub(crate) fn valid_read(&self, id: u64, slot: u32) -> [u8; ENTRY_SIZE] {
        let sectors = self
            .conn
            .as_ref()
            .map(|c| c.info.sectors)
            .unwrap_or(8)
            .max(16);
        let sector = (id * 8) % (sectors - 8) / 8 * 8;
        blkreq::rw(
            blkreq::OP_READ,
            1,
            0,
            id,
            sector,
            &[blkreq::Segment::page(self.data_gref(slot))],
        )
    }

    /// Waits for responses until every id in `pending` is answered or nothing arrived for
    /// `timeout`, counting them into `tally`.
    pub(crate) fn collect(
        &mut self,
        pending: &mut HashMap<u64, ()>,
        tally: &mut Tally,
        timeout: Duration,
    ) -> Result<(), Error> {
        let mut last_progress = Instant::now();
        while !pending.is_empty() {
            let got = match self.c().ring.take_responses() {
                Ok(r) => r,
                Err(_) => {
                    tally.bogus_rsp_prod = true;
                    break;
                }
            };
            if !got.is_empty() {
                last_progress = Instant::now();
            }
            for r in got {
                if pending.remove(&r.id).is_some() {
                    tally.count(r.status);
                    tally.status_of.insert(r.id, r.status);
                } else {
                    tally.unexpected += 1;
                }
            }
            if pending.is_empty() {
                break;
            }
            let waited = last_progress.elapsed();
            if waited >= timeout {
                break;
            }
            let slice = (timeout - waited).min(Duration::from_millis(50));
            self.evt.wait(slice)?;
        }
        tally.no_response += pending.len() as u64;
        pending.clear();
        Ok(())
    }

    /// Sends requests built by `build(frontend, id, ring_index)` (`count` of them), as many
    /// at a time as the ring holds, notifying after each batch, and waits for their
    /// responses. Stops early if the ring stops answering (then the rest count as not
    /// sent).
    pub(crate) fn run_batch(
        &mut self,
        count: u64,
        mut build: impl FnMut(&mut Frontend, u64, u32) -> [u8; ENTRY_SIZE],
    ) -> Result<Tally, Error> {
        let mut tally = Tally::default();
        let mut pending: HashMap<u64, ()> = HashMap::new();
        let mut sent = 0;
        let timeout = self.timeout;
        while sent < count {
            let mut n = 0;
            while sent < count && self.c().ring.free() > 0 {
                let id = self.id();
                let index = self.c().ring.req_prod_pvt;
                let mut entry = build(self, id, index);
                blkreq::set_id(&mut entry, id);
                self.c().ring.put(&entry);
                pending.insert(id, ());
                sent += 1;
                n += 1;
            }
            tally.sent += n;
            self.c().ring.push();
            self.notify()?;
            // Wait for room (or for everything, at the end).
            let before = pending.len();
            let mut last_progress = Instant::now();
            loop {
                let got = match self.c().ring.take_responses() {
                    Ok(r) => r,
                    Err(_) => {
                        tally.bogus_rsp_prod = true;
                        Vec::new()
                    }
                };
                if !got.is_empty() {
                    last_progress = Instant::now();
                }
                for r in got {
                    if pending.remove(&r.id).is_some() {
                        tally.count(r.status);
                        tally.status_of.insert(r.id, r.status);
                    } else {
                        tally.unexpected += 1;
                    }
                }
                let room = self.c().ring.free() > 0;
                if (sent < count && room) || pending.is_empty() {
                    break;
                }
                if last_progress.elapsed() >= timeout || tally.bogus_rsp_prod {
                    // The backend stopped answering: give up on this batch.
                    tally.no_response += pending.len() as u64;
                    let _ = before;
                    return Ok(tally);
                }
                self.evt.wait(Duration::from_millis(50))?;
            }
        }
        self.collect(&mut pending, &mut tally, timeout)?;
        Ok(tally)
    }

    /// One valid READ: whether it was answered OKAY within the timeout.
    pub(crate) fn probe(&mut self) -> Result<bool, Error> {
        if self.conn.is_none() {
            return Ok(false);
        }
        let t = self.run_batch(1, |f, id, index| f.valid_read(id, index))?;
        Ok(t.okay == 1)
    }

    /// Page `i` of the indirect pool.
    pub(crate) fn indirect_page(&self, i: u32) -> (u32, &crate::xen::SharedPages) {
        (
            self.indirect.grefs()[i as usize % INDIRECT_PAGES],
            self.indirect.mem(),
        )
    }

    /// Writes `segments` into indirect page `i` (first entries), the rest of the page
    /// untouched.
    pub(crate) fn fill_indirect(&self, i: u32, segments: &[blkreq::Segment]) {
        let page = (i as usize % INDIRECT_PAGES) * PAGE_SIZE;
        for (n, s) in segments.iter().take(blkreq::SEGMENTS_PER_PAGE).enumerate() {
            self.indirect
                .mem()
                .write_bytes(page + n * blkreq::SEGMENT_SIZE, &s.encode());
        }
    }

    /// Writes raw bytes into indirect page `i`.
    pub(crate) fn fill_indirect_raw(&self, i: u32, bytes: &[u8]) {
        let page = (i as usize % INDIRECT_PAGES) * PAGE_SIZE;
        let n = bytes.len().min(PAGE_SIZE);
        self.indirect.mem().write_bytes(page, &bytes[..n]);
    }
}
