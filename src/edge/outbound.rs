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
    let outcome = {
        let call = Box::pin(fetch.send_with_signal(&signal));
        let timer = Box::pin(Delay::from(Duration::from_millis(timeout_ms as u64)));
        match select(call, timer).await {
            Either::Left((Ok(resp), _)) => Ok(resp),
            Either::Left((Err(e), _)) => Err(FetchError::Network(e.to_string())),
            Either::Right(_) => Err(FetchError::Timeout(timeout_ms)),
        }
    };
    if matches!(outcome, Err(FetchError::Timeout(_))) {
        controller.abort();
    }
    outcome
}
