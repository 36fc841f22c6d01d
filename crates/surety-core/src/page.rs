//! Keyset pagination: a page of items plus an opaque cursor for the next one.

use crate::error::FieldError;

/// Items per page when none is asked for.
pub const DEFAULT_LIMIT: u32 = 50;
/// Most items per page.
pub const MAX_LIMIT: u32 = 1000;

/// Which page to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    /// How many items at most.
    pub limit: u32,
    /// Continue after this cursor (from the previous page's `next_cursor`).
    pub after: Option<String>,
}

impl PageRequest {
    /// Validates a raw limit and cursor.
    pub fn new(limit: Option<u32>, after: Option<String>) -> Result<Self, FieldError> {
        let limit = limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(FieldError::new(
                "limit",
                format!("must be between 1 and {MAX_LIMIT}"),
            ));
        }
        if after.as_ref().is_some_and(|c| c.len() > 128) {
            return Err(FieldError::new(
                "cursor",
                "is not a cursor returned by this API",
            ));
        }
        Ok(Self { limit, after })
    }

    /// The first page of `limit` items.
    #[must_use]
    pub fn first(limit: u32) -> Self {
        Self { limit, after: None }
    }
}

impl Default for PageRequest {
    fn default() -> Self {
        Self::first(DEFAULT_LIMIT)
    }
}

/// One page of results.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// The items, in the listing's order.
    pub items: Vec<T>,
    /// Cursor for the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Builds a page from up to `limit + 1` fetched rows: the extra row only signals that
    /// another page exists.
    pub fn from_overfetch(mut rows: Vec<T>, limit: u32, cursor_of: impl Fn(&T) -> String) -> Self {
        let limit = limit as usize;
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next_cursor = if more {
            rows.last().map(cursor_of)
        } else {
            None
        };
        Self {
            items: rows,
            next_cursor,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overfetch_yields_cursor_only_when_more_exist() {
        let p = Page::from_overfetch(vec![1, 2, 3], 2, |i| i.to_string());
        assert_eq!(p.items, vec![1, 2]);
        assert_eq!(p.next_cursor.as_deref(), Some("2"));
        let p = Page::from_overfetch(vec![1, 2], 2, |i| i.to_string());
        assert_eq!(p.next_cursor, None);
    }

    #[test]
    fn limits_are_bounded() {
        assert!(PageRequest::new(Some(0), None).is_err());
        assert!(PageRequest::new(Some(MAX_LIMIT + 1), None).is_err());
        assert_eq!(PageRequest::new(None, None).unwrap().limit, DEFAULT_LIMIT);
    }
}
