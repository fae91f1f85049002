//! Gathering a list endpoint's pages into one answer: by cursor (the next cursor read from each
//! answer with JMESPath), by page number, by offset, or by following the `Link` header's
//! `rel="next"`; never more than `max_pages`. The flow sends the pages; `Pager` says where each
//! page is and whether there is another, and keeps the items.

use super::mapping::{search, truthy};
use super::plan::{scalar, Planned};
use crate::core::error::ApiError;
use crate::core::integration::config::{PageStyle, Pagination};
use crate::core::upstream::OutboundBody;
use serde::Serialize;
use serde_json::Value;

pub const DEFAULT_MAX_PAGES: u32 = 5;
pub const MAX_PAGES: u32 = 20;

/// What the envelope says about the pages gathered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Pages {
    pub fetched: u32,
    /// False when `max_pages` stopped the gathering before the last page.
    pub complete: bool,
}

/// After a page: fetch the next one, or stop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    Fetch,
    Done,
    /// The answer points somewhere the gateway will not send the integration's credentials.
    Refused(String),
}

/// Where the next page is.
#[derive(Debug, Clone, PartialEq)]
enum Position {
    First,
    Cursor(String),
    Number(u64),
    Url(String),
}

pub struct Pager<'a> {
    p: &'a Pagination,
    base_url: &'a str,
    at: Position,
    fetched: u32,
    complete: bool,
    items: Vec<Value>,
}

impl<'a> Pager<'a> {
    pub fn new(p: &'a Pagination, base_url: &'a str) -> Self {
        let at = match p.style {
            PageStyle::Page => Position::Number(p.start.unwrap_or(1)),
            PageStyle::Offset => Position::Number(p.start.unwrap_or(0)),
            PageStyle::Cursor | PageStyle::Link => Position::First,
        };
        Pager {
            p,
            base_url,
            at,
            fetched: 0,
            complete: true,
            items: Vec::new(),
        }
    }

    fn max_pages(&self) -> u32 {
        self.p
            .max_pages
            .unwrap_or(DEFAULT_MAX_PAGES)
            .clamp(1, MAX_PAGES)
    }

    /// The endpoint's planned request, moved to the next page: its position in a query
    /// parameter (or, for a GraphQL call, a variable), or the `Link` header's URL.
    pub fn place(&self, planned: &Planned) -> Result<Planned, ApiError> {
        let mut next = planned.clone();
        let value = match &self.at {
            Position::First => return Ok(next),
            Position::Url(url) => {
                next.url = url.clone();
                return Ok(next);
            }
            Position::Cursor(c) => Value::String(c.clone()),
            Position::Number(n) => Value::from(*n),
        };
        let param = self.p.param.as_deref().unwrap_or_default();
        if !self.p.variable {
            next.url = with_param(&next.url, param, &scalar(&value));
            return Ok(next);
        }
        let with_variable = |text: &str| -> Option<String> {
            let mut body: Value = serde_json::from_str(text).ok()?;
            body["variables"][param] = value.clone();
            Some(body.to_string())
        };
        if let Some(b) = next.body.as_mut() {
            b["variables"][param] = value.clone();
        }
        next.content = next
            .content
            .as_ref()
            .and_then(OutboundBody::text)
            .and_then(with_variable)
            .map(OutboundBody::Text);
        next.document = next.document.as_deref().and_then(with_variable);
        Ok(next)
    }

    /// A page that answered: its items kept; `read` is what the response reads (a GraphQL
    /// answer's `data`), `link` its `Link` header.
    pub fn after(&mut self, read: &Value, link: Option<&str>) -> Result<Next, ApiError> {
        self.fetched += 1;
        let items = match search(&self.p.items, read).map_err(|e| ApiError::validation(e.0))? {
            Value::Array(items) => items,
            Value::Null => Vec::new(),
            other => vec![other],
        };
        let count = items.len() as u64;
        self.items.extend(items);
        let next = match self.p.style {
            PageStyle::Cursor => {
                let expr = self.p.next.as_deref().unwrap_or_default();
                match search(expr, read).map_err(|e| ApiError::validation(e.0))? {
                    v if !truthy(&v) => None,
                    v => Some(Position::Cursor(scalar(&v))),
                }
            }
            PageStyle::Page | PageStyle::Offset => {
                let full = self.p.page_size.is_none_or(|size| count >= u64::from(size));
                let Position::Number(n) = self.at else {
                    return Err(ApiError::internal("a numbered page without a number"));
                };
                let step = if self.p.style == PageStyle::Page {
                    1
                } else {
                    count
                };
                (count > 0 && full).then_some(Position::Number(n + step))
            }
            PageStyle::Link => match link.and_then(next_link) {
                Some(url) if same_origin(&url, self.base_url) => Some(Position::Url(url)),
                Some(_) => {
                    return Ok(Next::Refused(
                        "the provider's next page is on another host; it was not fetched".into(),
                    ))
                }
                None => None,
            },
        };
        Ok(match next {
            None => Next::Done,
            Some(_) if self.fetched >= self.max_pages() => {
                self.complete = false;
                Next::Done
            }
            Some(at) => {
                self.at = at;
                Next::Fetch
            }
        })
    }

    /// Every page's items, in order, and what was fetched.
    pub fn gathered(self) -> (Value, Pages) {
        let pages = Pages {
            fetched: self.fetched,
            complete: self.complete,
        };
        (Value::Array(self.items), pages)
    }
}

/// `url` with `name=value` in its query, replacing any earlier value of `name`.
fn with_param(url: &str, name: &str, value: &str) -> String {
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (k, v) in form_urlencoded::parse(query.as_bytes()).filter(|(k, _)| k != name) {
        out.append_pair(&k, &v);
    }
    out.append_pair(name, value);
    format!("{path}?{}", out.finish())
}

/// The `rel="next"` URL of a `Link` header (RFC 8288).
fn next_link(header: &str) -> Option<String> {
    header.split(",").find_map(|part| {
        let (target, params) = part.trim().split_once(';')?;
        let url = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        let is_next = params.split(';').any(|p| {
            let p = p.trim();
            p.strip_prefix("rel=")
                .map(|r| r.trim_matches('"'))
                .is_some_and(|r| r.split_whitespace().any(|r| r.eq_ignore_ascii_case("next")))
        });
        is_next.then(|| url.to_string())
    })
}

/// Same scheme, host and port as the integration's base URL: the only place its credentials go.
fn same_origin(url: &str, base: &str) -> bool {
    let origin = |u: &str| -> Option<String> {
        let (scheme, rest) = u.split_once("://")?;
        let authority = rest.split(['/', '?', '#']).next()?;
        Some(format!(
            "{}://{}",
            scheme.to_ascii_lowercase(),
            authority.to_ascii_lowercase()
        ))
    };
    origin(url).is_some_and(|o| Some(o) == origin(base))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::upstream::HttpMethod;
    use serde_json::json;

    fn pagination(v: Value) -> Pagination {
        serde_json::from_value(v).unwrap()
    }

    fn planned(url: &str, body: Option<Value>) -> Planned {
        Planned {
            method: HttpMethod::Get,
            url: url.into(),
            headers: vec![],
            content: body.as_ref().map(|b| OutboundBody::Text(b.to_string())),
            body,
            document: None,
        }
    }

    /// Runs a pager over `pages` (answer, Link header), returning the URLs (or bodies) asked for.
    fn walk(
        p: &Pagination,
        first: Planned,
        pages: &[(Value, Option<&str>)],
    ) -> (Vec<String>, Value, Pages, Next) {
        let mut pager = Pager::new(p, "https://api.example.com/v1");
        let mut asked = Vec::new();
        let mut last = Next::Done;
        for (answer, link) in pages {
            let req = pager.place(&first).unwrap();
            asked.push(match req.content {
                Some(OutboundBody::Text(body)) if p.variable => body,
                _ => req.url,
            });
            last = pager.after(answer, *link).unwrap();
            if last != Next::Fetch {
                break;
            }
        }
        let (items, pages) = pager.gathered();
        (asked, items, pages, last)
    }

    #[test]
    fn stripe_style_cursor_pages_until_has_more_is_false() {
        let p = pagination(
            json!({"style": "cursor", "items": "data", "next": "has_more && data[-1].id", "param": "starting_after"}),
        );
        let (asked, items, pages, _) = walk(
            &p,
            planned("https://api.example.com/v1/customers?limit=2", None),
            &[
                (
                    json!({"data": [{"id": "cus_1"}, {"id": "cus_2"}], "has_more": true}),
                    None,
                ),
                (json!({"data": [{"id": "cus_3"}], "has_more": false}), None),
            ],
        );
        assert_eq!(
            asked,
            [
                "https://api.example.com/v1/customers?limit=2",
                "https://api.example.com/v1/customers?limit=2&starting_after=cus_2"
            ]
        );
        assert_eq!(
            items,
            json!([{"id": "cus_1"}, {"id": "cus_2"}, {"id": "cus_3"}])
        );
        assert_eq!(
            pages,
            Pages {
                fetched: 2,
                complete: true
            }
        );
    }

    #[test]
    fn page_and_offset_stop_at_a_short_page_and_max_pages_marks_the_rest_missing() {
        let p = pagination(
            json!({"style": "page", "items": "tickets", "param": "page", "page_size": 2}),
        );
        let full = json!({"tickets": [1, 2]});
        let (asked, items, pages, _) = walk(
            &p,
            planned("https://api.example.com/v1/tickets?page=9&per_page=2", None),
            &[(full.clone(), None), (json!({"tickets": [3]}), None)],
        );
        assert_eq!(
            asked[0],
            "https://api.example.com/v1/tickets?per_page=2&page=1"
        );
        assert_eq!(
            asked[1],
            "https://api.example.com/v1/tickets?per_page=2&page=2"
        );
        assert_eq!((items, pages.complete), (json!([1, 2, 3]), true));
        let offset = pagination(
            json!({"style": "offset", "items": "items", "param": "offset", "max_pages": 2}),
        );
        let page = json!({"items": ["a", "b", "c"]});
        let (asked, items, pages, _) = walk(
            &offset,
            planned("https://api.example.com/v1/x", None),
            &[(page.clone(), None), (page.clone(), None), (page, None)],
        );
        assert_eq!(
            asked,
            [
                "https://api.example.com/v1/x?offset=0",
                "https://api.example.com/v1/x?offset=3"
            ]
        );
        assert_eq!(items.as_array().unwrap().len(), 6);
        assert_eq!(
            pages,
            Pages {
                fetched: 2,
                complete: false
            },
            "max_pages stopped it"
        );
        // An empty page ends a numbered walk even without a page size.
        let (_, _, pages, _) = walk(
            &offset,
            planned("https://api.example.com/v1/x", None),
            &[(json!({"items": []}), None)],
        );
        assert_eq!(
            pages,
            Pages {
                fetched: 1,
                complete: true
            }
        );
    }

    #[test]
    fn link_headers_are_followed_on_the_same_origin_only() {
        let p = pagination(json!({"style": "link", "items": "@"}));
        let link = r#"<https://api.example.com/v1/issues?page=2>; rel="next", <https://api.example.com/v1/issues?page=5>; rel="last""#;
        let (asked, items, _, last) = walk(
            &p,
            planned("https://api.example.com/v1/issues", None),
            &[(json!([1]), Some(link)), (json!([2]), None)],
        );
        assert_eq!(asked[1], "https://api.example.com/v1/issues?page=2");
        assert_eq!((items, last), (json!([1, 2]), Next::Done));
        let away = r#"<https://evil.example/steal?page=2>; rel="next""#;
        let (_, _, _, last) = walk(
            &p,
            planned("https://api.example.com/v1/issues", None),
            &[(json!([1]), Some(away))],
        );
        assert!(matches!(last, Next::Refused(_)));
        assert!(!same_origin(
            "https://api.example.com.evil.example/x",
            "https://api.example.com/v1"
        ));
        assert!(same_origin(
            "HTTPS://API.example.com/v2",
            "https://api.example.com/v1"
        ));
        assert_eq!(next_link(r#"<https://a/x>; rel="prev""#), None);
        assert_eq!(
            next_link("<https://a/y>; rel=next").as_deref(),
            Some("https://a/y")
        );
    }

    #[test]
    fn a_graphql_cursor_goes_in_the_variables() {
        let p = pagination(
            json!({"style": "cursor", "items": "orders.nodes", "variable": true,
            "next": "orders.pageInfo.hasNextPage && orders.pageInfo.endCursor", "param": "after"}),
        );
        let body = json!({"query": "query($after: String) { orders(first: 2, after: $after) { nodes { name } pageInfo { hasNextPage endCursor } } }", "variables": {}});
        let page = |names: Value, next: bool| json!({"orders": {"nodes": names, "pageInfo": {"hasNextPage": next, "endCursor": "eyJsYXN0"}}});
        let (asked, items, _, _) = walk(
            &p,
            planned("https://shop.example/graphql.json", Some(body)),
            &[
                (page(json!([{"name": "#1"}]), true), None),
                (page(json!([{"name": "#2"}]), false), None),
            ],
        );
        let second: Value = serde_json::from_str(&asked[1]).unwrap();
        assert_eq!(second["variables"], json!({"after": "eyJsYXN0"}));
        assert_eq!(items, json!([{"name": "#1"}, {"name": "#2"}]));
    }
}
