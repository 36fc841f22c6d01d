//! Server-sent events passed through one event at a time, so that a JSON-RPC response on the
//! stream can be edited (list filtering) while everything else is relayed as it arrives.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use serde_json::Value;

/// Rewrites each event whose `data` is JSON with `f`; other events, and partial data at the
/// end, pass unchanged.
pub fn rewrite<S, E>(
    inner: S,
    f: Arc<dyn Fn(Value) -> Value + Send + Sync>,
) -> impl Stream<Item = Result<Bytes, E>> + Send
where
    S: Stream<Item = Result<Bytes, E>> + Send + Unpin + 'static,
    E: Send + 'static,
{
    futures_util::stream::unfold(
        (inner, Vec::<u8>::new(), false),
        move |(mut inner, mut buf, done)| {
            let f = f.clone();
            async move {
                loop {
                    if let Some(end) = event_end(&buf) {
                        let event: Vec<u8> = buf.drain(..end).collect();
                        return Some((Ok(Bytes::from(edit(&event, &*f))), (inner, buf, done)));
                    }
                    if done {
                        if buf.is_empty() {
                            return None;
                        }
                        let rest = std::mem::take(&mut buf);
                        return Some((Ok(Bytes::from(rest)), (inner, buf, true)));
                    }
                    match inner.next().await {
                        Some(Ok(chunk)) => buf.extend_from_slice(&chunk),
                        Some(Err(e)) => return Some((Err(e), (inner, buf, true))),
                        None => {
                            return if buf.is_empty() {
                                None
                            } else {
                                let rest = std::mem::take(&mut buf);
                                Some((Ok(Bytes::from(rest)), (inner, buf, true)))
                            };
                        }
                    }
                }
            }
        },
    )
}

/// The length of the first complete event in `buf` (up to and including its blank line).
fn event_end(buf: &[u8]) -> Option<usize> {
    for i in 0..buf.len() {
        if buf[i..].starts_with(b"\n\n") {
            return Some(i + 2);
        }
        if buf[i..].starts_with(b"\r\n\r\n") {
            return Some(i + 4);
        }
    }
    None
}

fn edit(event: &[u8], f: &(dyn Fn(Value) -> Value + Send + Sync)) -> Vec<u8> {
    let Ok(text) = std::str::from_utf8(event) else {
        return event.to_vec();
    };
    let mut others = Vec::new();
    let mut data = Vec::new();
    for line in text.lines() {
        match line.strip_prefix("data:") {
            Some(d) => data.push(d.strip_prefix(' ').unwrap_or(d)),
            None if !line.is_empty() => others.push(line),
            None => {}
        }
    }
    let Ok(value) = serde_json::from_str::<Value>(&data.join("\n")) else {
        return event.to_vec();
    };
    let mut out = String::new();
    for l in others {
        out.push_str(l);
        out.push('\n');
    }
    out.push_str("data: ");
    out.push_str(&f(value).to_string());
    out.push_str("\n\n");
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn events_are_edited_one_by_one_across_chunk_boundaries() {
        let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
            Ok(Bytes::from_static(
                b"event: message\nid: 1\ndata: {\"id\":1,",
            )),
            Ok(Bytes::from_static(
                b"\"result\":{\"n\":1}}\n\n: keep-alive\n\n",
            )),
            Ok(Bytes::from_static(b"data: not json\n\ndata: {\"id\":2}")),
        ];
        let f: Arc<dyn Fn(Value) -> Value + Send + Sync> = Arc::new(|mut v: Value| {
            v["seen"] = Value::Bool(true);
            v
        });
        let out: Vec<Bytes> = rewrite(futures_util::stream::iter(chunks), f)
            .map(|r| r.unwrap())
            .collect()
            .await;
        let text: Vec<String> = out
            .iter()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .collect();
        assert_eq!(
            text[0],
            "event: message\nid: 1\ndata: {\"id\":1,\"result\":{\"n\":1},\"seen\":true}\n\n"
        );
        assert_eq!(text[1], ": keep-alive\n\n");
        assert_eq!(text[2], "data: not json\n\n");
        assert_eq!(
            text[3], "data: {\"id\":2}",
            "an unfinished event at the end passes as it is"
        );
    }
}
