//! Many senders, one receiver.

#[allow(unsafe_code)] // the header's and the rings' places in the memory
pub(crate) mod layout;
pub(crate) mod seats;
