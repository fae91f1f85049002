//! Bindings to `crossings.js`: building a header set, sending a request and asking a Durable
//! Object, each in one crossing between wasm and the runtime (the profile's largest glue costs
//! were one crossing per header set and per object workers-rs builds around a fetch).

use crate::core::http::{join_header_lines as lines, split_header_lines};
use crate::core::upstream::FetchError;
use wasm_bindgen::prelude::*;
use worker::js_sys::Promise;
use worker::js_sys::{Array, Uint8Array};
use worker::wasm_bindgen::JsCast;
use worker::wasm_bindgen_futures::JsFuture;
use worker::web_sys::{AbortSignal, Headers, ReadableStream, Response};
use worker::Env;

#[wasm_bindgen(module = "/src/edge/crossings.js")]
extern "C" {
    #[wasm_bindgen(js_name = headersOf, catch)]
    fn headers_of_lines(lines: &str) -> Result<Headers, JsValue>;
    #[wasm_bindgen(js_name = linesOf)]
    fn lines_of(headers: &Headers) -> String;
    #[wasm_bindgen(js_name = send, catch)]
    fn send_lines(
        url: &str,
        method: &str,
        lines: &str,
        body: &JsValue,
        signal: &AbortSignal,
    ) -> Result<Promise, JsValue>;
    #[wasm_bindgen(js_name = respond, catch)]
    fn respond_lines(status: u16, lines: &str, body: &JsValue) -> Result<Response, JsValue>;
    #[wasm_bindgen(js_name = respondBytes, catch)]
    fn respond_bytes(status: u16, lines: &str, bytes: &[u8]) -> Result<Response, JsValue>;
    #[wasm_bindgen(js_name = readerOf)]
    fn reader_of(body: &ReadableStream) -> JsValue;
    #[wasm_bindgen(js_name = readChunk)]
    fn read_chunk(reader: &JsValue) -> Promise;
    #[wasm_bindgen(js_name = cancelReader)]
    fn cancel_reader(reader: &JsValue);
    #[wasm_bindgen(js_name = pipe)]
    fn new_pipe() -> Array;
    #[wasm_bindgen(js_name = writeChunk)]
    fn write_chunk(writer: &JsValue, bytes: &[u8]) -> Promise;
    #[wasm_bindgen(js_name = closeWriter)]
    fn close_writer(writer: &JsValue);
    /// A command's body to the object `name` of `binding`: the answer's text (status 200), or
    /// the runtime's error.
    #[wasm_bindgen(js_name = askObject)]
    pub fn ask(env: &Env, binding: &str, name: &str, body: String) -> Promise;
}

/// A header set of these pairs; `None` if the runtime refuses one of them.
pub fn headers<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Option<worker::Headers> {
    headers_of_lines(&lines(pairs)?).ok().map(worker::Headers)
}

/// Every header of a response, names lowercase.
pub fn all(headers: &Headers) -> Vec<(String, String)> {
    split_header_lines(&lines_of(headers))
}

/// `fetch(url, {method, headers, body, signal})`: the answer's promise, or why nothing was sent.
pub fn fetch<'a>(
    url: &str,
    method: &str,
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    body: &JsValue,
    signal: &AbortSignal,
) -> Result<Promise, FetchError> {
    let lines = lines(pairs).ok_or(FetchError::Invalid("header"))?;
    send_lines(url, method, &lines, body, signal).map_err(|e| match e.as_string() {
        Some(s) if s == "URL" => FetchError::Invalid("URL"),
        _ => FetchError::Invalid("header"),
    })
}

/// Why a capped read of a body stopped.
pub enum Unread {
    TooLarge,
    Failed(String),
}

/// A body of at most `cap` bytes, the client's or a third party's. When its length was declared
/// (and the caller checked it against the cap) it frames the body: one `arrayBuffer()`, not a
/// crossing per chunk, and the cap is checked again on what arrived. Otherwise it is read chunk
/// by chunk, stopping as soon as the cap is passed.
pub async fn read_capped(
    declared: bool,
    cap: usize,
    whole: impl FnOnce() -> Result<Promise, JsValue>,
    body: Option<ReadableStream>,
) -> Result<Vec<u8>, Unread> {
    let failed = |e: JsValue| Unread::Failed(super::outbound::message(&e));
    if declared {
        let buf = JsFuture::from(whole().map_err(failed)?)
            .await
            .map_err(failed)?;
        let bytes = Uint8Array::new(&buf).to_vec();
        return match bytes.len() <= cap {
            true => Ok(bytes),
            false => Err(Unread::TooLarge),
        };
    }
    let Some(body) = body else {
        return Ok(Vec::new()); // no body at all
    };
    let mut reader = BodyReader::new(&body);
    let mut out = Vec::new();
    while let Some(chunk) = reader.next().await {
        let chunk = chunk.map_err(Unread::Failed)?;
        if out.len() + chunk.len() > cap {
            return Err(Unread::TooLarge);
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// What a client's response carries.
pub enum Body<'a> {
    None,
    Bytes(&'a [u8]),
    Stream(JsValue),
}

/// The client's response from its status, headers and body; `None` if the runtime refuses a
/// header or the status.
pub fn response<'a>(
    status: u16,
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    body: Body,
) -> Option<Response> {
    let lines = lines(pairs)?;
    match body {
        Body::None => respond_lines(status, &lines, &JsValue::UNDEFINED),
        Body::Bytes(b) => respond_bytes(status, &lines, b),
        Body::Stream(s) => respond_lines(status, &lines, &s),
    }
    .ok()
}

/// A body read chunk by chunk: one crossing a chunk (workers-rs' `ByteStream` makes three, and
/// when dropped before the end it cancels through a closure it never frees).
pub struct BodyReader {
    reader: JsValue,
    done: bool,
}

impl BodyReader {
    pub fn new(body: &ReadableStream) -> Self {
        BodyReader {
            reader: reader_of(body),
            done: false,
        }
    }

    /// The next chunk; `None` at the end (or after an error).
    pub async fn next(&mut self) -> Option<Result<Vec<u8>, String>> {
        if self.done {
            return None;
        }
        match JsFuture::from(read_chunk(&self.reader)).await {
            Ok(v) if v.is_undefined() => {
                self.done = true;
                None
            }
            Ok(v) => Some(Ok(Uint8Array::from(v).to_vec())),
            Err(e) => {
                self.done = true;
                Some(Err(super::outbound::message(&e)))
            }
        }
    }
}

impl Drop for BodyReader {
    fn drop(&mut self) {
        if !self.done {
            cancel_reader(&self.reader);
        }
    }
}

/// The writing end of a response body: chunks pushed from wasm, one crossing each. Dropped, it
/// ends the body.
pub struct Pipe {
    writer: JsValue,
}

/// A body for a response and the pipe that fills it.
pub fn pipe() -> (ReadableStream, Pipe) {
    let ends = new_pipe();
    (
        ends.get(0).unchecked_into(),
        Pipe {
            writer: ends.get(1),
        },
    )
}

impl Pipe {
    /// Writes `bytes`; waits until the client's side took them. `Err`: the client is gone.
    pub async fn write(&self, bytes: &[u8]) -> Result<(), String> {
        JsFuture::from(write_chunk(&self.writer, bytes))
            .await
            .map(|_| ())
            .map_err(|e| super::outbound::message(&e))
    }
}

impl Drop for Pipe {
    fn drop(&mut self) {
        close_writer(&self.writer);
    }
}
