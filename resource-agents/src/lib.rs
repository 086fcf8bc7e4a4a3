//! `resource-agents`: the agents of the reference haresources chain.
