//! The connections the endpoint is serving, and which of them are idle: waiting for a request's
//! head (the TLS handshake included), and since when. At the connection cap the server does not
//! stop accepting (hundreds of idle connections once held it shut, so `/healthz` and `/metrics`
//! went unanswered and a liveness probe would have restarted a healthy process): it closes the
//! longest-idle connection of the client holding the most, and takes the new one. A connection
//! busy with a request is never closed for room.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

use tokio::sync::oneshot;

/// One connection: its client, since when it is idle (`None` while a request is being
/// answered), and how to close it.
struct Conn {
    peer: IpAddr,
    idle_since: Option<Instant>,
    evict: Option<oneshot::Sender<()>>,
}

#[derive(Default)]
struct State {
    next: u64,
    live: HashMap<u64, Conn>,
}

/// The live connections.
#[derive(Default)]
pub struct Conns {
    state: Mutex<State>,
    /// Notified when a connection ends.
    pub freed: tokio::sync::Notify,
}

impl Conns {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A new connection from `peer`, idle until its first request: its id, and what fires when
    /// it is closed for room.
    pub fn open(&self, peer: IpAddr) -> (u64, oneshot::Receiver<()>) {
        let (tx, rx) = oneshot::channel();
        let mut s = self.state();
        let id = s.next;
        s.next += 1;
        s.live.insert(
            id,
            Conn {
                peer,
                idle_since: Some(Instant::now()),
                evict: Some(tx),
            },
        );
        (id, rx)
    }

    /// A request of `id` is being answered: not to be closed.
    pub fn busy(&self, id: u64) {
        if let Some(c) = self.state().live.get_mut(&id) {
            c.idle_since = None;
        }
    }

    /// `id` answered its request and waits for the next.
    pub fn idle(&self, id: u64) {
        if let Some(c) = self.state().live.get_mut(&id) {
            c.idle_since = Some(Instant::now());
        }
    }

    /// `id` ended.
    pub fn close(&self, id: u64) {
        self.state().live.remove(&id);
        self.freed.notify_one();
    }

    /// Connections open.
    pub fn len(&self) -> usize {
        self.state().live.len()
    }

    /// Whether none is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Closes one idle connection to make room: of the client holding the most connections,
    /// the one idle longest. `false` when every connection is busy with a request.
    pub(crate) fn make_room(&self) -> bool {
        let mut s = self.state();
        let mut held: HashMap<IpAddr, usize> = HashMap::new();
        for c in s.live.values() {
            *held.entry(c.peer).or_default() += 1;
        }
        let victim = s
            .live
            .iter()
            .filter(|(_, c)| c.evict.is_some())
            .filter_map(|(id, c)| c.idle_since.map(|t| (*id, held[&c.peer], t)))
            // Most connections first, then idle longest.
            .max_by(|a, b| a.1.cmp(&b.1).then(b.2.cmp(&a.2)))
            .map(|(id, _, _)| id);
        match victim.and_then(|id| s.live.get_mut(&id)) {
            Some(c) => {
                if let Some(tx) = c.evict.take() {
                    let _ = tx.send(());
                }
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_is_made_from_the_busiest_client_idle_longest_never_from_a_busy_connection() {
        let conns = Conns::default();
        let flood: IpAddr = "10.0.0.9".parse().unwrap();
        let scraper: IpAddr = "10.0.0.1".parse().unwrap();
        let (s1, mut s1_rx) = conns.open(scraper);
        let mut flood_rx: Vec<_> = (0..3).map(|_| conns.open(flood)).collect();
        let (busy, mut busy_rx) = conns.open(flood);
        conns.busy(busy);
        // The scraper's connection is the oldest idle, but the flood holds more.
        assert!(conns.make_room());
        assert!(
            flood_rx[0].1.try_recv().is_ok(),
            "the flood's oldest idle one"
        );
        assert!(s1_rx.try_recv().is_err());
        for (id, _) in &flood_rx {
            conns.close(*id);
        }
        flood_rx.clear();
        // Now the scraper's idle one and the flood's busy one: the busy one stays.
        assert!(conns.make_room());
        assert!(s1_rx.try_recv().is_ok());
        assert!(busy_rx.try_recv().is_err());
        conns.close(s1);
        assert!(!conns.make_room(), "only a busy connection is left");
        assert_eq!(conns.len(), 1);
    }
}
