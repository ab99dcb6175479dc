//! Pipe: a duplex 1:1 channel of byte messages between two processes, with a clear
//! end: once the other end is closed the survivor drains what was sent and then gets
//! `Eof`; if the other process died, `PeerDead` — never a hang.
//!
//! An end belongs to one process at a time: a `Pipe` is `Send` (move it to another
//! thread) but not `Sync`.
use std::cell::Cell;
use std::marker::PhantomData;
use std::ptr;
use std::time::Duration;

use shoal_sys as sys;

use crate::error::{check, Error, Result};
use crate::message::Message;
use crate::options::{borrowed_str, c_name, name_ptr, nanos, OpenMode, Options};

/// One end of a pipe.
pub struct Pipe {
    raw: *mut sys::shoal_pipe,
    max_msg: usize,
    _not_sync: PhantomData<Cell<()>>,
}

unsafe impl Send for Pipe {}

fn config(max_msg: usize, capacity: usize) -> sys::shoal_queue_config {
    sys::shoal_queue_config { type_: ptr::null(), max_msg, capacity, spsc: 0 }
}

impl Pipe {
    /// Creates a pipe (None: anonymous) of messages up to `max_msg` bytes, `capacity`
    /// per direction (0: the default), and opens both ends here: (end 0, end 1).
    pub fn pair(name: Option<&str>, max_msg: usize, capacity: usize, opts: &Options) -> Result<(Pipe, Pipe)> {
        let cname = c_name(name)?;
        let attr = opts.raw();
        let cfg = config(max_msg, capacity);
        let (mut a, mut b) = (ptr::null_mut(), ptr::null_mut());
        check(unsafe { sys::shoal_pipe_pair(&mut a, &mut b, name_ptr(&cname), &cfg, &attr) })?;
        let end = |raw| Pipe { raw, max_msg, _not_sync: PhantomData };
        Ok((end(a), end(b)))
    }

    /// Opens end `end` (0 or 1) of the pipe `name`, creating it if `mode` allows.
    /// Kind `Busy` while another live process holds that end.
    pub fn open(
        name: &str,
        end: i32,
        mode: OpenMode,
        max_msg: usize,
        capacity: usize,
        opts: &Options,
    ) -> Result<Pipe> {
        let cname = c_name(Some(name))?;
        let attr = opts.raw();
        let cfg = config(max_msg, capacity);
        let mut raw = ptr::null_mut();
        check(unsafe { sys::shoal_pipe_open(&mut raw, name_ptr(&cname), end, mode.raw(), &cfg, &attr) })?;
        Ok(Pipe { raw, max_msg, _not_sync: PhantomData })
    }

    pub fn name(&self) -> &str {
        unsafe { borrowed_str(sys::shoal_pipe_name(self.raw)) }
    }

    /// Sends `msg`, waiting at most `timeout` for room.
    pub fn send(&self, msg: &[u8], timeout: Duration) -> Result<()> {
        check(unsafe { sys::shoal_pipe_send(self.raw, msg.as_ptr() as *const _, msg.len(), nanos(timeout)) })
            .map(drop)
    }

    /// Receives the next message, waiting at most `timeout`.
    pub fn recv(&self, timeout: Duration) -> Result<Vec<u8>> {
        let mut buf = vec![0u8; self.max_msg.max(1)];
        loop {
            let mut len = 0usize;
            let rc = unsafe {
                sys::shoal_pipe_recv(
                    self.raw,
                    buf.as_mut_ptr() as *mut _,
                    buf.len(),
                    &mut len,
                    nanos(timeout),
                )
            };
            if rc == sys::SHOAL_EMSGSIZE && len > buf.len() {
                buf.resize(len, 0); // opened with a smaller max_msg than the pipe's
                continue;
            }
            if rc < 0 {
                return Err(Error::last(rc));
            }
            buf.truncate(len);
            return Ok(buf);
        }
    }

    /// Sends a generated message as its protobuf form ([`Message::to_pb`]; invalid,
    /// nothing is sent), as C's `Foo_pipe_send` of an encoded message does.
    pub fn send_msg<M: Message>(&self, m: &M, timeout: Duration) -> Result<()> {
        self.send(&m.to_pb()?, timeout)
    }

    /// Receives a message and decodes it as an `M` (`InvalidData` when it is not one).
    pub fn recv_msg<M: Message>(&self, timeout: Duration) -> Result<M> {
        M::from_pb(&self.recv(timeout)?)
    }

    /// Whether a message (or the end of the stream) is ready, waiting at most `timeout`.
    pub fn poll(&self, timeout: Duration) -> Result<bool> {
        check(unsafe { sys::shoal_pipe_poll(self.raw, nanos(timeout)) }).map(|r| r == 1)
    }
}

impl Drop for Pipe {
    fn drop(&mut self) {
        unsafe { sys::shoal_pipe_close(self.raw) };
    }
}
