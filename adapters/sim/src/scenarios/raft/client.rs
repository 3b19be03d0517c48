//! A client of the replicated key-value service: one request at a time, to the server it
//! believes leads, recording every operation for the linearizability checker.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use rand::Rng;
use starling_core::machine::Output;
use starling_core::rng::{seeded, MachineRng};
use starling_core::time::{Duration, Instant};

use super::member::{Reply, SimMsg, SimOutput};
use crate::linearizability::{KvInput, KvOutput, Operation};
use crate::NodeId;

/// The history every client appends to.
pub(crate) type History = Rc<RefCell<Vec<Operation<KvInput, KvOutput>>>>;

/// How clients behave.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ClientParams {
    /// Servers are nodes `0..servers`.
    pub servers: u32,
    /// Keys are `0..keys`; few keys make operations contend.
    pub keys: u64,
    /// An operation without an answer this long is given up (its outcome unknown).
    pub give_up: Duration,
    /// Resend an unanswered request this often (the same request number: the service applies
    /// it once), alternating between the presumed leader and the next server.
    pub resend: Duration,
    /// Wait before asking again when no leader is known.
    pub retry: Duration,
    /// Longest pause between two operations.
    pub think: Duration,
    /// No operation starts after this.
    pub stop_at: Instant,
}

struct InFlight {
    req: u64,
    op: KvInput,
    call: Instant,
    give_up_at: Instant,
    /// When to send the request again: soon after a refusal, else after [`ClientParams::resend`].
    resend_at: Instant,
    /// Unanswered sends so far.
    sends: u32,
}

pub(crate) struct Client {
    id: NodeId,
    params: ClientParams,
    rng: MachineRng,
    leader: NodeId,
    next_req: u64,
    current: Option<InFlight>,
    /// When the next operation starts, if none is in flight.
    wake: Instant,
    /// The last value this client saw per key, so compare-and-sets sometimes hit.
    seen: Vec<Option<u64>>,
    history: History,
    out: VecDeque<SimOutput>,
}

impl Client {
    pub(crate) fn new(id: NodeId, params: ClientParams, seed: u64, history: History) -> Client {
        let mut rng = seeded(seed);
        let leader = rng.random_range(0..params.servers);
        Client {
            id,
            params,
            rng,
            leader,
            next_req: 1,
            current: None,
            wake: Instant::ZERO,
            seen: vec![None; params.keys as usize],
            history,
            out: VecDeque::new(),
        }
    }

    pub fn on_message(&mut self, now: Instant, msg: SimMsg) {
        let SimMsg::Reply { req, reply } = msg else {
            return;
        };
        let Some(current) = self.current.as_mut().filter(|c| c.req == req) else {
            return; // an answer to an attempt already given up, or a duplicate
        };
        match reply {
            Reply::Done(output) => {
                let current = self.current.take().expect("matched above");
                let seen = match (current.op, output) {
                    (_, KvOutput::Value(v)) => Some(v),
                    (KvInput::Put(_, v), _) => Some(Some(v)),
                    (KvInput::Cas { new, .. }, KvOutput::CasResult(true)) => Some(Some(new)),
                    _ => None,
                };
                if let Some(v) = seen {
                    self.seen[current.op.key() as usize] = v;
                }
                self.record(current, Some((now, output)));
                self.wake = now + self.pause();
            }
            Reply::NotLeader(hint) => {
                // Nothing was logged: the same request may go elsewhere.
                let next = hint.filter(|h| *h < self.params.servers);
                self.leader = next.unwrap_or((self.leader + 1) % self.params.servers);
                current.resend_at = if next.is_some() {
                    now
                } else {
                    now + self.params.retry
                };
            }
            Reply::Unknown => {
                let current = self.current.take().expect("matched above");
                self.record(current, None);
                self.wake = now + self.pause();
            }
        }
        self.on_timeout(now);
    }

    pub fn on_timeout(&mut self, now: Instant) {
        if let Some(current) = &mut self.current {
            if now >= current.give_up_at {
                let current = self.current.take().expect("checked above");
                self.record(current, None);
                self.leader = (self.leader + 1) % self.params.servers;
                self.wake = now;
            } else if current.resend_at <= now {
                current.sends += 1;
                current.resend_at = now + self.params.resend;
                if current.sends % 2 == 0 {
                    self.leader = (self.leader + 1) % self.params.servers;
                }
                let (req, op) = (current.req, current.op);
                self.send(req, op);
            }
        }
        if self.current.is_none() && now >= self.wake && now < self.params.stop_at {
            let op = self.pick_op();
            let req = self.next_req;
            self.next_req += 1;
            self.current = Some(InFlight {
                req,
                op,
                call: now,
                give_up_at: now + self.params.give_up,
                resend_at: now + self.params.resend,
                sends: 1,
            });
            self.send(req, op);
        }
    }

    pub fn next_timeout(&self) -> Option<Instant> {
        match &self.current {
            Some(c) => Some(c.resend_at.min(c.give_up_at)),
            None if self.wake < self.params.stop_at => Some(self.wake),
            None => None,
        }
    }

    pub fn poll_output(&mut self) -> Option<SimOutput> {
        self.out.pop_front()
    }

    fn send(&mut self, req: u64, op: KvInput) {
        self.out.push_back(Output::Send {
            to: self.leader,
            msg: SimMsg::Request { req, op },
        });
    }

    fn pause(&mut self) -> Duration {
        Duration::from_nanos(self.rng.random_range(0..=self.params.think.as_nanos()))
    }

    /// Reads, writes of values unique to this client and request, and compare-and-sets against
    /// the last value seen.
    fn pick_op(&mut self) -> KvInput {
        let key = self.rng.random_range(0..self.params.keys);
        let unique = (u64::from(self.id) << 32) | self.next_req;
        match self.rng.random_range(0..10) {
            0..4 => KvInput::Get(key),
            4..8 => KvInput::Put(key, unique),
            _ => KvInput::Cas {
                key,
                expect: self.seen[key as usize],
                new: unique,
            },
        }
    }

    fn record(&mut self, op: InFlight, ret: Option<(Instant, KvOutput)>) {
        let (client, call) = (u64::from(self.id), op.call.as_nanos());
        let entry = match ret {
            Some((at, output)) => Operation::completed(client, op.op, call, at.as_nanos(), output),
            None => Operation::pending(client, op.op, call),
        };
        self.history.borrow_mut().push(entry);
    }
}
