//! Bindings to `crossings.js`: building a header set, sending a request and asking a Durable
//! Object, each in one crossing between wasm and the runtime (the profile's largest glue costs
//! were one crossing per header set and per object workers-rs builds around a fetch).

use crate::core::http::{join_header_lines as lines, split_header_lines};
use crate::core::upstream::{Chunk, FetchError};
use wasm_bindgen::prelude::*;
use worker::js_sys::{Array, Error, Promise, Uint8Array};
use worker::wasm_bindgen::JsCast;
use worker::wasm_bindgen_futures::JsFuture;
use worker::web_sys::{Headers, ReadableStream, Response};
use worker::Env;

#[wasm_bindgen(module = "/src/edge/crossings.js")]
extern "C" {
    #[wasm_bindgen(js_name = headersOf, catch)]
    fn headers_of_lines(lines: &str) -> Result<Headers, JsValue>;
    #[wasm_bindgen(js_name = linesOf)]
    fn lines_of(headers: &Headers) -> String;
    #[wasm_bindgen(js_name = send)]
    fn send_lines(url: &str, method: &str, lines: &str, body: &JsValue, ms: f64) -> Promise;
    #[wasm_bindgen(js_name = exchange)]
    fn exchange_lines(
        url: &str,
        method: &str,
        lines: &str,
        body: &JsValue,
        ms: f64,
        cap: f64,
    ) -> Promise;
    #[wasm_bindgen(js_name = readAll)]
    fn read_all_of(message: &JsValue, cap: f64) -> Promise;
    #[wasm_bindgen(js_name = respond, catch)]
    fn respond_lines(status: u16, lines: &str, body: &JsValue) -> Result<Response, JsValue>;
    #[wasm_bindgen(js_name = respondBytes, catch)]
    fn respond_bytes(status: u16, lines: &str, bytes: &[u8]) -> Result<Response, JsValue>;
    #[wasm_bindgen(js_name = writePoint, catch)]
    fn write_point(
        dataset: &JsValue,
        index: &str,
        blobs: Vec<String>,
        doubles: &[f64],
    ) -> Result<(), JsValue>;
    #[wasm_bindgen(js_name = readerOf)]
    fn reader_of(body: &ReadableStream) -> JsValue;
    #[wasm_bindgen(js_name = readChunk)]
    fn read_chunk(reader: &JsValue, ms: f64) -> Promise;
    #[wasm_bindgen(js_name = cancelReader)]
    fn cancel_reader(reader: &JsValue);
    #[wasm_bindgen(js_name = pipe)]
    fn new_pipe() -> Array;
    #[wasm_bindgen(js_name = writeChunk)]
    fn write_chunk(writer: &JsValue, bytes: &[u8], ms: f64) -> Promise;
    #[wasm_bindgen(js_name = relayChunk)]
    fn relay_chunk(writer: &JsValue, bytes: &[u8], reader: &JsValue, ms: f64) -> Promise;
    #[wasm_bindgen(js_name = closeWriter)]
    fn close_writer(writer: &JsValue);
    /// A command's body to the object `name` of `binding`: the answer's text (status 200)
    /// within `ms`, or the runtime's error (or a timeout).
    #[wasm_bindgen(js_name = askObject)]
    pub fn ask(env: &Env, binding: &str, name: &str, body: String, ms: f64) -> Promise;
}

/// A header set of these pairs; `None` if the runtime refuses one of them.
pub fn headers<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Option<worker::Headers> {
    headers_of_lines(&lines(pairs)?).ok().map(worker::Headers)
}

/// Writes one data point (an index, its blobs and doubles) to `dataset`.
pub fn point(dataset: &JsValue, p: crate::core::platform::DataPoint) -> Result<(), String> {
    write_point(dataset, &p.index, p.blobs.into(), &p.doubles).map_err(|e| message(&e))
}

/// Every header of a response, names lowercase.
pub fn all(headers: &Headers) -> Vec<(String, String)> {
    split_header_lines(&lines_of(headers))
}

/// How `crossings.js` rejects a failed exchange: its own reasons, or the runtime's error.
fn fetch_error(e: &JsValue, ms: u64, cap: usize) -> FetchError {
    match e.as_string().as_deref() {
        Some("URL") => FetchError::Invalid("URL"),
        Some("header") => FetchError::Invalid("header"),
        Some("timeout") => FetchError::Timeout(ms),
        Some("too large") => FetchError::TooLarge(cap),
        _ => FetchError::Network(message(e)),
    }
}

/// `fetch(url, {method, headers, body})`, its answer's headers due within `ms` (the fetch
/// aborted otherwise); the body is the caller's to read.
pub async fn send<'a>(
    url: &str,
    method: &str,
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    body: &JsValue,
    ms: u64,
) -> Result<Response, FetchError> {
    let lines = lines(pairs).ok_or(FetchError::Invalid("header"))?;
    let answer = JsFuture::from(send_lines(url, method, &lines, body, ms as f64))
        .await
        .map_err(|e| fetch_error(&e, ms, 0))?;
    Ok(answer.unchecked_into())
}

/// An answer read whole: status, headers (names lowercase) and body (`None` when not read).
pub struct Whole {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
}

/// How much of an answer's body an exchange reads.
#[derive(Clone, Copy)]
pub enum Read {
    /// All of it, or TOO_LARGE past this many bytes.
    Whole(usize),
    /// Its first bytes, up to this many; the rest is released.
    Preview(usize),
}

/// The whole exchange in one crossing and one promise: the request sent, its answer's body read
/// as `read` says, everything within `ms`.
pub async fn exchange<'a>(
    url: &str,
    method: &str,
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    body: &JsValue,
    ms: u64,
    read: Read,
) -> Result<Whole, FetchError> {
    let lines = lines(pairs).ok_or(FetchError::Invalid("header"))?;
    // One number crosses: a negative cap asks for a preview.
    let (cap, cap_js) = match read {
        Read::Whole(c) => (c, c as f64),
        Read::Preview(c) => (c, -(c as f64)),
    };
    let answer = JsFuture::from(exchange_lines(url, method, &lines, body, ms as f64, cap_js))
        .await
        .map_err(|e| fetch_error(&e, ms, cap))?;
    let parts: Array = answer.unchecked_into();
    let bytes = parts.get(2);
    Ok(Whole {
        status: parts.get(0).as_f64().unwrap_or(0.0) as u16,
        headers: split_header_lines(&parts.get(1).as_string().unwrap_or_default()),
        body: (!bytes.is_null()).then(|| Uint8Array::from(bytes).to_vec()),
    })
}

/// Why a capped read of a body stopped.
pub enum Unread {
    TooLarge,
    Failed,
}

/// The body of `r` (a runtime Request or Response), at most `cap` bytes: one `arrayBuffer()`
/// when its length was declared, else read chunk by chunk until the cap is passed, in one
/// promise either way.
pub async fn read_all(r: &JsValue, cap: usize) -> Result<Vec<u8>, Unread> {
    match JsFuture::from(read_all_of(r, cap as f64)).await {
        Ok(bytes) => Ok(Uint8Array::from(bytes).to_vec()),
        Err(e) if e.as_string().as_deref() == Some("too large") => Err(Unread::TooLarge),
        Err(_) => Err(Unread::Failed),
    }
}

/// What a client's response carries.
pub enum ResponseBody {
    Empty,
    Bytes(Vec<u8>),
    /// A body the runtime reads from a stream (a `pipe` that wasm fills).
    Stream(ReadableStream),
}

/// The client's response from its status, headers and body; `None` if the runtime refuses a
/// header or the status.
pub fn response<'a>(
    status: u16,
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    body: &ResponseBody,
) -> Option<Response> {
    let lines = lines(pairs)?;
    match body {
        ResponseBody::Empty => respond_lines(status, &lines, &JsValue::UNDEFINED),
        ResponseBody::Bytes(b) => respond_bytes(status, &lines, b),
        ResponseBody::Stream(s) => respond_lines(status, &lines, s),
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

    /// The next chunk, unless `ms` pass first.
    pub async fn next(&mut self, ms: u64) -> Chunk {
        if self.done {
            return Chunk::End;
        }
        let read = JsFuture::from(read_chunk(&self.reader, ms.max(1) as f64)).await;
        self.chunk(read)
    }

    /// `bytes` written to `out` while the next chunk is read, both within `ms`; `None`: the
    /// client is gone (or took nothing for `ms`).
    pub async fn relay(&mut self, out: &Pipe, bytes: &[u8], ms: u64) -> Option<Chunk> {
        if self.done {
            return out.write(bytes, ms).await.ok().map(|_| Chunk::End);
        }
        let ms = ms.max(1) as f64;
        let read = JsFuture::from(relay_chunk(&out.writer, bytes, &self.reader, ms)).await;
        match read {
            Ok(v) if v.is_null() => None,
            read => Some(self.chunk(read)),
        }
    }

    fn chunk(&mut self, read: Result<JsValue, JsValue>) -> Chunk {
        match read {
            Ok(v) if v.is_undefined() => {
                self.done = true;
                Chunk::End
            }
            Ok(v) => Chunk::Bytes(Uint8Array::from(v).to_vec()),
            Err(e) if e.as_string().as_deref() == Some("timeout") => Chunk::Late,
            Err(e) => {
                self.done = true;
                Chunk::Failed(message(&e))
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

/// A rejection's message (the runtime's text, not a third party's).
pub fn message(e: &JsValue) -> String {
    match e.dyn_ref::<Error>() {
        Some(err) => String::from(err.message()),
        None => e.as_string().unwrap_or_else(|| "fetch failed".into()),
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
    /// Writes `bytes`; waits until the client's side took them. `Err`: the client is gone, or
    /// took nothing for `ms` (the body is aborted then).
    pub async fn write(&self, bytes: &[u8], ms: u64) -> Result<(), String> {
        JsFuture::from(write_chunk(&self.writer, bytes, ms.max(1) as f64))
            .await
            .map(|_| ())
            .map_err(|e| message(&e))
    }
}

impl Drop for Pipe {
    fn drop(&mut self) {
        close_writer(&self.writer);
    }
}
