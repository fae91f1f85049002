//! The gateway's HTTP API as the CLI calls it: one agent, bearer credentials, JSON both ways,
//! and every refusal turned into the gateway's own error message.

use serde_json::Value;
use std::io::Read;
use std::time::Duration;

pub struct Api {
    agent: ureq::Agent,
    base: String,
    admin_token: Option<String>,
    key: Option<String>,
}

/// Which credential a call uses.
#[derive(Clone, Copy)]
pub enum As {
    Admin,
    Tenant,
    Nobody,
}

impl Api {
    pub fn new(base: &str, admin_token: Option<String>, key: Option<String>) -> Self {
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(10))
            .timeout_read(Duration::from_secs(120))
            .build();
        Api {
            agent,
            base: base.trim_end_matches('/').to_string(),
            admin_token,
            key,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn request(&self, method: &str, path: &str, who: As) -> Result<ureq::Request, String> {
        let req = self.agent.request(method, &self.url(path));
        let token = match who {
            As::Admin => Some(self.admin_token.as_deref().ok_or(
                "this command needs the admin token: GATEWAY_ADMIN_TOKEN, admin_token in the \
                 config file, or --admin-token - to read it from stdin",
            )?),
            As::Tenant => Some(self.key.as_deref().ok_or(
                "this command needs a tenant key: GATEWAY_KEY, key in the config file, or \
                 --key - to read it from stdin",
            )?),
            As::Nobody => None,
        };
        Ok(match token {
            Some(t) => req.set("authorization", &format!("Bearer {t}")),
            None => req,
        })
    }

    /// A JSON call; `Ok(None)` for an answer without a body (204).
    pub fn call(
        &self,
        method: &str,
        path: &str,
        who: As,
        body: Option<&Value>,
    ) -> Result<Option<Value>, String> {
        let req = self.request(method, path, who)?;
        let sent = match body {
            Some(b) => req
                .set("content-type", "application/json")
                .send_string(&b.to_string()),
            None => req.call(),
        };
        let resp = answer(sent)?;
        if resp.status() == 204 {
            return Ok(None);
        }
        let text = resp.into_string().map_err(|e| e.to_string())?;
        if text.trim().is_empty() {
            return Ok(None);
        }
        serde_json::from_str(&text).map(Some).map_err(|_| {
            format!(
                "the gateway answered something other than JSON: {}",
                snippet(&text)
            )
        })
    }

    /// A raw POST (a signed webhook), answered with its status and body.
    pub fn post_raw(
        &self,
        path: &str,
        headers: &[(String, String)],
        body: &str,
    ) -> Result<(u16, String), String> {
        let mut req = self.request("POST", path, As::Nobody)?;
        for (k, v) in headers {
            req = req.set(k, v);
        }
        match req.send_string(body) {
            Ok(r) => Ok((r.status(), r.into_string().unwrap_or_default())),
            Err(ureq::Error::Status(s, r)) => Ok((s, r.into_string().unwrap_or_default())),
            Err(e) => Err(e.to_string()),
        }
    }

    /// A streaming POST: the answer's body as a reader.
    pub fn stream(&self, path: &str, body: &Value) -> Result<Box<dyn Read + Send>, String> {
        let req = self
            .request("POST", path, As::Tenant)?
            .set("content-type", "application/json")
            .set("accept", "text/event-stream");
        Ok(answer(req.send_string(&body.to_string()))?.into_reader())
    }
}

/// The answer, or the gateway's own error message (`{"error": {"message"}}`) as the failure.
fn answer(sent: Result<ureq::Response, ureq::Error>) -> Result<ureq::Response, String> {
    match sent {
        Ok(r) => Ok(r),
        Err(ureq::Error::Status(status, r)) => {
            let text = r.into_string().unwrap_or_default();
            let message = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v["error"]["message"].as_str().map(String::from))
                .unwrap_or_else(|| snippet(&text));
            Err(format!("{status}: {message}"))
        }
        Err(e) => Err(format!("could not reach the gateway: {e}")),
    }
}

fn snippet(text: &str) -> String {
    text.chars().take(200).collect()
}
