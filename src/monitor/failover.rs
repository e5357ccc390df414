//! Failover (`[failover]`): which instance of an active/standby pair (or
//! group) is the active one, decided through the broker alone.
//!
//! Every instance announces itself with a retained `B/instances/<id>`
//! (`standby`/`active`; its main connection's last will says `offline`) and
//! its priority in a retained `B/instances/<id>/priority`. The active
//! instance holds a retained `B/leader` lease naming it, published by a
//! connection of its own whose last will clears it (the daemon opens that
//! connection when told to [`Action::Claim`]). The election here only reads
//! those topics and the clock:
//!
//! - after each (re)connection it waits [`SETTLE_MS`] for the retained
//!   messages before deciding anything, publishing nothing of the leader's;
//! - a live leader other than itself makes it a standby;
//! - a vacant lease (`B/leader` empty, or naming an instance whose presence
//!   says `offline`) is claimed by the best live candidate only: active
//!   instances first, then higher priority, then the last leader seen (so a
//!   broker restart gives the lease back to the same instance), then the
//!   smaller client id;
//! - after publishing its claim an instance waits until the broker has
//!   delivered it back and [`CONFIRM_MS`] passed with no later claim before
//!   acting (two simultaneous claims: the broker's order decides, the last
//!   one holds);
//! - an active instance that sees another instance's claim steps down
//!   ([`Action::Deposed`]).

use std::collections::BTreeMap;

/// How long after a (re)connection the retained state is awaited.
pub const SETTLE_MS: u64 = 1_000;
/// How long a claim must stand unchallenged before acting on it.
pub const CONFIRM_MS: u64 = 500;
/// A claim not seen back within this long is made again.
const CLAIM_RETRY_MS: u64 = 5_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailoverSettings {
    /// The instance id: the `[mqtt] clientid`.
    pub id: String,
    pub priority: i64,
}

/// This instance's part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Not connected yet, or just (re)connected: waiting for the retained
    /// state.
    Deciding,
    Standby,
    /// Claim published, not confirmed yet.
    Claiming,
    Active,
}

impl Role {
    /// The value of `B/instances/<id>`.
    pub fn presence(self) -> &'static str {
        match self {
            Role::Active => "active",
            Role::Deciding | Role::Standby | Role::Claiming => "standby",
        }
    }
}

/// What the daemon must do about the election.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Publish the claim: open the lease connection (retained `B/leader` =
    /// own id, last will clearing it).
    Claim,
    /// Close the lease connection without its last will (a lost claim).
    Withdraw,
    /// This instance is now the active one. `fresh`: no leader was seen
    /// since start (a cold start of the whole installation), so the start-up
    /// replay is due.
    BecameActive { fresh: bool },
    /// This instance was active before a reconnection and still holds the
    /// lease: it goes on leading.
    Resumed,
    /// Another instance holds the lease: stop acting as the leader (close
    /// the lease connection without its last will, stop the agents this
    /// instance launched).
    Deposed { by: String },
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Peer {
    /// `standby`, `active`, `offline`, or empty when unknown.
    pub presence: String,
    pub priority: i64,
}

impl Peer {
    fn live(&self) -> bool {
        matches!(self.presence.as_str(), "standby" | "active")
    }
}

#[derive(Debug)]
pub struct Election {
    id: String,
    priority: i64,
    role: Role,
    /// Other instances by id.
    peers: BTreeMap<String, Peer>,
    /// The current `B/leader`.
    leader: Option<String>,
    /// The last non-empty `B/leader` seen.
    last_leader: Option<String>,
    connected: bool,
    /// Monotonic ms of the last (re)connection.
    connected_at: u64,
    /// Active when the connection was lost (deciding whether to resume).
    was_active: bool,
    /// Monotonic ms of the last claim, and whether it came back.
    claimed_at: Option<u64>,
    claim_seen: bool,
    /// Another instance was seen leading since start.
    saw_other_leader: bool,
    takeovers: u64,
    /// Monotonic ms of the last takeover.
    last_takeover: Option<u64>,
}

impl Election {
    pub fn new(settings: &FailoverSettings) -> Election {
        Election {
            id: settings.id.clone(),
            priority: settings.priority,
            role: Role::Deciding,
            peers: BTreeMap::new(),
            leader: None,
            last_leader: None,
            connected: false,
            connected_at: 0,
            was_active: false,
            claimed_at: None,
            claim_seen: false,
            saw_other_leader: false,
            takeovers: 0,
            last_takeover: None,
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn priority(&self) -> i64 {
        self.priority
    }

    pub fn role(&self) -> Role {
        self.role
    }

    pub fn leader(&self) -> Option<&str> {
        self.leader.as_deref()
    }

    pub fn peers(&self) -> &BTreeMap<String, Peer> {
        &self.peers
    }

    pub fn takeovers(&self) -> u64 {
        self.takeovers
    }

    pub fn last_takeover(&self) -> Option<u64> {
        self.last_takeover
    }

    /// Connected (again): decide afresh once the retained state is in,
    /// publishing nothing of the leader's meanwhile.
    pub fn on_connected(&mut self, now: u64) {
        self.connected = true;
        self.connected_at = now;
        // The broker sends the retained lease and presences again (a broker
        // restarted without persistence sends none): forget the old ones.
        self.leader = None;
        self.peers.clear();
        self.was_active = self.was_active || self.role == Role::Active;
        self.role = Role::Deciding;
    }

    pub fn on_disconnected(&mut self) {
        self.connected = false;
    }

    /// `B/leader` (empty: the lease is free).
    pub fn on_leader(&mut self, payload: &[u8], now: u64, actions: &mut Vec<Action>) {
        let leader = std::str::from_utf8(payload)
            .ok()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from);
        if let Some(l) = &leader {
            self.last_leader = Some(l.clone());
            if *l == self.id {
                if self.claimed_at.is_some() {
                    self.claim_seen = true;
                }
            } else {
                self.saw_other_leader = true;
                if self.role == Role::Claiming {
                    // A later claim than ours: the broker's order decides.
                    self.role = Role::Standby;
                    self.claimed_at = None;
                    actions.push(Action::Withdraw);
                }
            }
        }
        self.leader = leader;
        self.step(now, actions);
    }

    /// `B/instances/<id>` or `B/instances/<id>/priority`, `rest` being what
    /// follows `B/instances/`.
    pub fn on_instance(&mut self, rest: &str, payload: &[u8], now: u64, actions: &mut Vec<Action>) {
        let text = String::from_utf8_lossy(payload).trim().to_string();
        let (id, field) = match rest.split_once('/') {
            Some((id, field)) => (id, Some(field)),
            None => (rest, None),
        };
        if id == self.id || id.is_empty() {
            return;
        }
        let peer = self.peers.entry(id.to_string()).or_default();
        match field {
            None => peer.presence = text,
            Some("priority") => peer.priority = text.parse().unwrap_or(0),
            Some(_) => return,
        }
        self.step(now, actions);
    }

    /// Whether the lease is free: nobody named, or the named instance is
    /// known to be offline.
    fn vacant(&self) -> bool {
        match &self.leader {
            None => true,
            Some(l) if *l == self.id => false,
            Some(l) => self.peers.get(l).is_some_and(|p| p.presence == "offline"),
        }
    }

    /// Whether this instance is the one that should hold a vacant lease.
    fn is_best(&self) -> bool {
        let key = |id: &str, active: bool, priority: i64| {
            (
                !active,
                -priority,
                self.last_leader.as_deref() != Some(id),
                id.to_string(),
            )
        };
        let mine = key(
            &self.id,
            self.role == Role::Active || self.was_active,
            self.priority,
        );
        self.peers
            .iter()
            .filter(|(_, p)| p.live())
            .all(|(id, p)| key(id, p.presence == "active", p.priority) > mine)
    }

    /// Advances the election (on every input and every tick).
    pub fn step(&mut self, now: u64, actions: &mut Vec<Action>) {
        if !self.connected {
            return;
        }
        match self.role {
            Role::Deciding if now < self.connected_at + SETTLE_MS => {}
            Role::Deciding => {
                self.role = Role::Standby;
                let was_active = std::mem::take(&mut self.was_active);
                match self.leader.clone() {
                    Some(l) if l == self.id && was_active => {
                        // Still ours: a disconnection nobody else acted on.
                        self.role = Role::Active;
                        actions.push(Action::Resumed);
                    }
                    Some(l) if l == self.id => self.become_active(now, actions),
                    Some(other) if !self.vacant() => {
                        if was_active {
                            actions.push(Action::Deposed { by: other });
                        }
                    }
                    _ => {
                        if was_active {
                            // Ranked as the active instance it was.
                            self.was_active = true;
                        }
                        self.consider_claim(now, actions);
                        self.was_active = false;
                    }
                }
            }
            Role::Standby => self.consider_claim(now, actions),
            Role::Claiming => {
                let at = self.claimed_at.unwrap_or(now);
                if self.claim_seen && now >= at + CONFIRM_MS {
                    self.become_active(now, actions);
                } else if !self.claim_seen && now >= at + CLAIM_RETRY_MS {
                    self.claimed_at = Some(now);
                    actions.push(Action::Claim);
                }
            }
            Role::Active => match self.leader.clone() {
                Some(l) if l == self.id => self.claimed_at = None,
                Some(other) if !self.vacant() => {
                    self.role = Role::Standby;
                    actions.push(Action::Deposed { by: other });
                }
                _ => {
                    // Our lease was cleared (its connection dropped): claim
                    // it again, at most every few seconds.
                    if self.claimed_at.is_none_or(|t| now >= t + CLAIM_RETRY_MS) {
                        self.claimed_at = Some(now);
                        actions.push(Action::Claim);
                    }
                }
            },
        }
    }

    /// A standby claims a vacant lease when it is the best candidate.
    fn consider_claim(&mut self, now: u64, actions: &mut Vec<Action>) {
        if self.vacant() && self.is_best() {
            self.role = Role::Claiming;
            self.claimed_at = Some(now);
            self.claim_seen = false;
            actions.push(Action::Claim);
        }
    }

    fn become_active(&mut self, now: u64, actions: &mut Vec<Action>) {
        self.role = Role::Active;
        self.claimed_at = None;
        self.takeovers += 1;
        self.last_takeover = Some(now);
        actions.push(Action::BecameActive {
            fresh: !self.saw_other_leader,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn election(id: &str, priority: i64) -> Election {
        Election::new(&FailoverSettings {
            id: id.into(),
            priority,
        })
    }

    /// Connected at `at`, retained state: `leader`, `peers`.
    fn settled(
        e: &mut Election,
        at: u64,
        leader: &str,
        peers: &[(&str, &str, i64)],
    ) -> Vec<Action> {
        let mut a = Vec::new();
        e.on_connected(at);
        for (id, presence, priority) in peers {
            e.on_instance(
                &format!("{id}/priority"),
                priority.to_string().as_bytes(),
                at,
                &mut a,
            );
            e.on_instance(id, presence.as_bytes(), at, &mut a);
        }
        e.on_leader(leader.as_bytes(), at, &mut a);
        assert!(a.is_empty(), "nothing before the state settled: {a:?}");
        e.step(at + SETTLE_MS, &mut a);
        a
    }

    /// An instance alone at a cold start, active at 2 s.
    fn active_alone(id: &str) -> (Election, Vec<Action>) {
        let mut e = election(id, 0);
        settled(&mut e, 0, "", &[]);
        let mut acts = Vec::new();
        e.on_leader(id.as_bytes(), 1_100, &mut acts);
        e.step(2_000, &mut acts);
        assert_eq!(e.role(), Role::Active);
        (e, acts)
    }

    #[test]
    fn a_live_leader_makes_a_standby() {
        let mut e = election("b", 10);
        let a = settled(&mut e, 0, "a", &[("a", "active", 0)]);
        assert!(a.is_empty());
        assert_eq!(e.role(), Role::Standby);
    }

    #[test]
    fn alone_it_claims_confirms_and_leads_with_a_startup_replay() {
        let mut e = election("a", 0);
        let a = settled(&mut e, 0, "", &[]);
        assert_eq!(a, [Action::Claim]);
        assert_eq!(e.role(), Role::Claiming);
        let mut a = Vec::new();
        e.step(5_000 - 1 + SETTLE_MS, &mut a);
        assert!(a.is_empty(), "not before its claim came back");
        e.on_leader(b"a", 1_200, &mut a);
        e.step(1_300, &mut a);
        assert!(a.is_empty(), "claim not yet confirmed");
        e.step(1_200 + CONFIRM_MS, &mut a);
        assert_eq!(a, [Action::BecameActive { fresh: true }]);
        assert_eq!(e.role(), Role::Active);
        assert_eq!(e.takeovers(), 1);
    }

    #[test]
    fn the_best_standby_takes_over_when_the_lease_is_cleared() {
        let mut hi = election("hi", 10);
        let mut lo = election("lo", 5);
        let peers_of_hi = [("lead", "active", 0), ("lo", "standby", 5)];
        let peers_of_lo = [("lead", "active", 0), ("hi", "standby", 10)];
        assert!(settled(&mut hi, 0, "lead", &peers_of_hi).is_empty());
        assert!(settled(&mut lo, 0, "lead", &peers_of_lo).is_empty());
        // The leader dies: its last wills say offline and clear the lease.
        let (mut a_hi, mut a_lo) = (Vec::new(), Vec::new());
        hi.on_instance("lead", b"offline", 5_000, &mut a_hi);
        lo.on_instance("lead", b"offline", 5_000, &mut a_lo);
        hi.on_leader(b"", 5_000, &mut a_hi);
        lo.on_leader(b"", 5_000, &mut a_lo);
        assert_eq!(a_hi, [Action::Claim]);
        assert!(a_lo.is_empty(), "the lower priority waits");
        hi.on_leader(b"hi", 5_050, &mut a_hi);
        lo.on_leader(b"hi", 5_050, &mut a_lo);
        hi.step(5_050 + CONFIRM_MS, &mut a_hi);
        assert_eq!(a_hi, [Action::Claim, Action::BecameActive { fresh: false }]);
        assert_eq!(lo.role(), Role::Standby);
    }

    #[test]
    fn a_lease_naming_an_offline_instance_is_vacant() {
        let mut e = election("b", 0);
        let a = settled(&mut e, 0, "a", &[("a", "offline", 0)]);
        assert_eq!(a, [Action::Claim]);
    }

    #[test]
    fn ties_are_broken_by_client_id_and_the_last_leader_is_preferred() {
        let mut b = election("b", 1);
        assert!(settled(&mut b, 0, "", &[("a", "standby", 1)]).is_empty());
        let mut a = election("a", 1);
        assert_eq!(
            settled(&mut a, 0, "", &[("b", "standby", 1)]),
            [Action::Claim]
        );
        // After a broker restart the lease is gone: the last leader (b)
        // gets it back although a sorts first.
        let mut b = election("b", 1);
        let mut acts = Vec::new();
        b.on_connected(0);
        b.on_leader(b"b", 0, &mut acts);
        b.on_disconnected();
        b.role = Role::Standby;
        b.on_connected(10_000);
        b.on_instance("a", b"standby", 10_000, &mut acts);
        b.on_instance("a/priority", b"1", 10_000, &mut acts);
        b.on_leader(b"", 10_000, &mut acts);
        b.step(10_000 + SETTLE_MS, &mut acts);
        assert_eq!(acts, [Action::Claim]);
    }

    #[test]
    fn simultaneous_claims_the_later_one_holds() {
        let mut a = election("a", 0);
        assert_eq!(settled(&mut a, 0, "", &[]), [Action::Claim]);
        let mut acts = Vec::new();
        // Our claim, then another instance's, in the broker's order.
        a.on_leader(b"a", 1_100, &mut acts);
        a.on_leader(b"z", 1_150, &mut acts);
        a.step(1_100 + CONFIRM_MS, &mut acts);
        assert_eq!(acts, [Action::Withdraw]);
        assert_eq!(a.role(), Role::Standby);
    }

    #[test]
    fn an_active_instance_seeing_another_lease_steps_down() {
        let (mut a, mut acts) = active_alone("a");
        assert_eq!(a.role(), Role::Active);
        acts.clear();
        a.on_instance("b", b"active", 9_000, &mut acts);
        a.on_leader(b"b", 9_000, &mut acts);
        assert_eq!(acts, [Action::Deposed { by: "b".into() }]);
        assert_eq!(a.role(), Role::Standby);
    }

    #[test]
    fn a_reconnected_leader_still_named_resumes() {
        let (mut a, mut acts) = active_alone("a");
        a.on_disconnected();
        acts.clear();
        a.on_connected(5_000);
        a.on_leader(b"a", 5_000, &mut acts);
        assert_eq!(
            a.role(),
            Role::Deciding,
            "nothing published before it knows"
        );
        a.step(5_000 + SETTLE_MS, &mut acts);
        assert_eq!(acts, [Action::Resumed]);
        assert_eq!(a.role(), Role::Active);
        assert_eq!(a.takeovers(), 1, "a resumption is no takeover");
    }

    #[test]
    fn a_leader_reconnecting_after_a_takeover_becomes_standby() {
        let (mut a, mut acts) = active_alone("a");
        a.on_disconnected();
        acts.clear();
        a.on_connected(40_000);
        a.on_instance("b", b"active", 40_000, &mut acts);
        a.on_leader(b"b", 40_000, &mut acts);
        assert!(acts.is_empty(), "nothing before the state settled");
        a.step(40_000 + SETTLE_MS, &mut acts);
        assert_eq!(acts, [Action::Deposed { by: "b".into() }]);
        assert_eq!(a.role(), Role::Standby);
    }

    #[test]
    fn own_presence_is_not_a_peer() {
        let mut a = election("a", 0);
        let mut acts = Vec::new();
        a.on_instance("a", b"active", 0, &mut acts);
        a.on_instance("a/priority", b"3", 0, &mut acts);
        assert!(a.peers().is_empty());
    }
}
