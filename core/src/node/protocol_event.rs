//! [`ProtocolEvent`]: an event of a hosted protocol, typed by the protocol and carried by the
//! node without knowing the type.

use core::any::Any;
use core::fmt;

use crate::wire::ProtocolId;

/// An event of a hosted protocol, as [`NodeEvent::Protocol`](super::NodeEvent::Protocol)
/// carries it. Read it with [`ProtocolEvent::downcast_ref`] (or [`ProtocolEvent::downcast`])
/// for the protocol's own event type:
///
/// ```
/// # use starling_core::node::ProtocolEvent;
/// # use starling_core::dht::{DhtEvent, NodeContact};
/// fn on_event(event: &ProtocolEvent) {
///     if let Some(dht) = event.downcast_ref::<DhtEvent<NodeContact>>() {
///         println!("DHT: {dht:?}");
///     }
/// }
/// ```
pub struct ProtocolEvent {
    protocol: ProtocolId,
    name: &'static str,
    event: Box<dyn DynEvent>,
}

impl ProtocolEvent {
    /// Wraps `event` of the protocol `name` whose (first) id is `protocol`.
    pub fn new<E>(protocol: ProtocolId, name: &'static str, event: E) -> Self
    where
        E: Clone + fmt::Debug + PartialEq + Send + 'static,
    {
        ProtocolEvent {
            protocol,
            name,
            event: Box::new(event),
        }
    }

    /// The protocol that reported it.
    pub fn protocol(&self) -> ProtocolId {
        self.protocol
    }

    /// The protocol's name ([`Protocol::NAME`](super::Protocol::NAME)).
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The event, if it is an `E`.
    pub fn downcast_ref<E: 'static>(&self) -> Option<&E> {
        self.event.as_any().downcast_ref()
    }

    /// The event by value, if it is an `E`; the wrapper back otherwise.
    pub fn downcast<E: 'static>(self) -> Result<E, Self> {
        if self.event.as_any().is::<E>() {
            let any: Box<dyn Any> = self.event.into_any();
            Ok(*any.downcast::<E>().expect("type checked above"))
        } else {
            Err(self)
        }
    }
}

impl Clone for ProtocolEvent {
    fn clone(&self) -> Self {
        ProtocolEvent {
            protocol: self.protocol,
            name: self.name,
            event: self.event.clone_box(),
        }
    }
}

impl PartialEq for ProtocolEvent {
    fn eq(&self, other: &Self) -> bool {
        self.protocol == other.protocol && self.event.eq_dyn(other.event.as_any())
    }
}

impl Eq for ProtocolEvent {}

impl fmt::Debug for ProtocolEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.name)?;
        self.event.fmt(f)
    }
}

/// What the node needs of an event whose type it does not know: cloning, comparing (both for
/// `NodeEvent`'s derives) and recovering the type.
trait DynEvent: fmt::Debug + Send {
    fn clone_box(&self) -> Box<dyn DynEvent>;
    fn eq_dyn(&self, other: &dyn Any) -> bool;
    fn as_any(&self) -> &dyn Any;
    fn into_any(self: Box<Self>) -> Box<dyn Any>;
}

impl<E: Clone + fmt::Debug + PartialEq + Send + 'static> DynEvent for E {
    fn clone_box(&self) -> Box<dyn DynEvent> {
        Box::new(self.clone())
    }
    fn eq_dyn(&self, other: &dyn Any) -> bool {
        other.downcast_ref::<E>() == Some(self)
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_keep_their_type_and_compare_by_value() {
        let a = ProtocolEvent::new(ProtocolId(900), "toy", 7u32);
        assert_eq!(a.downcast_ref::<u32>(), Some(&7));
        assert_eq!(a.downcast_ref::<u64>(), None);
        assert_eq!(a.clone(), a);
        assert_ne!(a, ProtocolEvent::new(ProtocolId(900), "toy", 8u32));
        assert_ne!(a, ProtocolEvent::new(ProtocolId(900), "toy", 7u64));
        assert_eq!(format!("{a:?}"), "toy:7");
        let a = a.downcast::<u64>().unwrap_err();
        assert_eq!(a.downcast::<u32>().ok(), Some(7));
    }
}
