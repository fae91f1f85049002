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

/// Refuses a gateway URL over plain http to a host other than this machine's loopback (as
/// `make dev` serves): the bearer credential would cross the network unencrypted. `insecure`
/// is the user saying the network between is trusted.
pub fn check_url(base: &str, insecure: bool) -> Result<(), String> {
    let url = url::Url::parse(base).map_err(|e| format!("the gateway URL is not valid: {e}"))?;
    let loopback = match url.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    if url.scheme() != "http" || loopback || insecure {
        return Ok(());
    }
    // The origin only: a password in the URL is not repeated.
    Err(format!(
        "{} is plain http: credentials would cross the network unencrypted; use https://, or \
         --insecure (GATEWAY_INSECURE=1) on a network you trust",
        url.origin().ascii_serialization()
    ))
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

#[cfg(test)]
mod tests {
    use super::check_url;

    #[test]
    fn plain_http_is_refused_but_to_this_machine() {
        for local in [
            "http://localhost:8787",
            "http://LOCALHOST:8787/",
            "http://127.0.0.1:8787",
            "http://127.0.1.1",
            "http://[::1]:8787",
        ] {
            assert_eq!(check_url(local, false), Ok(()), "{local}");
        }
        let err = check_url("http://gw.example.com:8080/base", false).unwrap_err();
        assert!(
            err.starts_with("http://gw.example.com:8080 is plain http: credentials would cross"),
            "{err}"
        );
        assert!(err.ends_with("--insecure (GATEWAY_INSECURE=1) on a network you trust"));
        for far in [
            "http://10.0.0.5",
            "http://[2001:db8::1]",
            "http://localhost.example.com",
            "http://localhost@gw.example.com",
            "HTTP://gw.example.com",
        ] {
            assert!(check_url(far, false).is_err(), "{far}");
        }
        // A password in the URL is not repeated.
        let err = check_url("http://ann:hunter2@gw.example.com", false).unwrap_err();
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn https_anywhere_and_http_when_insecure_are_allowed() {
        assert_eq!(check_url("https://gw.example.com", false), Ok(()));
        assert_eq!(check_url("http://gw.example.com", true), Ok(()));
        assert!(check_url("gw.example.com", false)
            .unwrap_err()
            .starts_with("the gateway URL is not valid"));
    }
}
