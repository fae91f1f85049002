//! The client's request, read through the runtime's own object. workers-rs' `Request` reads
//! every property when it wraps one, parsing the `cf` object (a few percent of an LLM request's
//! CPU in the profile) that the gateway never uses; this reads only what a route asks for.

use super::crossings::{read_all, Unread};
use crate::core::http::url_path;
use std::cell::OnceCell;
use worker::web_sys;

pub struct Inbound(web_sys::Request, OnceCell<Vec<(String, String)>>);

impl Inbound {
    pub fn new(raw: web_sys::Request) -> Self {
        Inbound(raw, OnceCell::new())
    }

    pub fn method(&self) -> String {
        self.0.method()
    }

    /// The whole URL, as the runtime serialized it.
    pub fn url(&self) -> String {
        self.0.url()
    }

    /// The URL's path, as sent (not percent-decoded).
    pub fn path(&self) -> String {
        url_path(&self.url()).to_string()
    }

    /// A header's value, if present (a repeated one joined by `, `, as the runtime gives it).
    /// A request's routes ask for a dozen: all are read in the first ask's crossing.
    pub fn header(&self, name: &str) -> Option<String> {
        let all = self
            .1
            .get_or_init(|| super::crossings::all(&self.0.headers()));
        let found = all.iter().find(|(k, _)| k.eq_ignore_ascii_case(name));
        found.map(|(_, v)| v.clone())
    }

    /// Every header, names lowercase.
    pub fn headers(&self) -> Vec<(String, String)> {
        match self.1.get() {
            Some(all) => all.clone(),
            None => super::crossings::all(&self.0.headers()),
        }
    }

    /// The body, at most `cap` bytes (`crossings::read_all`).
    pub async fn read_capped(&self, cap: usize) -> Result<Vec<u8>, Unread> {
        read_all(self.0.as_ref(), cap).await
    }
}
