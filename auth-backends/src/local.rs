//! `type: local`: users of the gateway's own user store.
