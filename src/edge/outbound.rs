//! Calls to third parties (destinations, providers) with a hard timeout: the fetch is raced
//! against a timer and aborted when the timer wins.

use futures::future::{select, Either};
use std::time::Duration;
use worker::{AbortController, Delay, Fetch, Request, Response};

pub enum FetchError {
    Timeout(u32),
    Network(String),
}

impl FetchError {
    pub fn describe(&self) -> String {
        match self {
            FetchError::Timeout(ms) => format!("timed out after {ms} ms"),
            FetchError::Network(e) => format!("connection failed: {e}"),
        }
    }
}

pub async fn fetch_with_timeout(req: Request, timeout_ms: u32) -> Result<Response, FetchError> {
    let controller = AbortController::default();
    let signal = controller.signal();
    let fetch = Fetch::Request(req);
    match within(u64::from(timeout_ms), fetch.send_with_signal(&signal)).await {
        Some(Ok(resp)) => Ok(resp),
        Some(Err(e)) => Err(FetchError::Network(e.to_string())),
        None => {
            controller.abort();
            Err(FetchError::Timeout(timeout_ms))
        }
    }
}

/// `f`, unless `ms` pass first.
pub async fn within<F: std::future::Future>(ms: u64, f: F) -> Option<F::Output> {
    let timer = Delay::from(Duration::from_millis(ms));
    match select(Box::pin(f), Box::pin(timer)).await {
        Either::Left((v, _)) => Some(v),
        Either::Right(_) => None,
    }
}
