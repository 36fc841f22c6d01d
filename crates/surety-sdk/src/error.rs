use surety_api::ErrorBody;

/// Why a client call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an error.
    #[error("{status}: {}{}", body.error, body.error_description.as_deref().map(|d| format!(" — {d}")).unwrap_or_default())]
    Api {
        /// HTTP status.
        status: u16,
        /// The error body.
        body: ErrorBody,
    },
    /// The server could not be reached or answered something unreadable.
    #[error("cannot reach the server: {0}")]
    Http(#[from] reqwest::Error),
    /// A key could not be read, generated or used.
    #[error("key error: {0}")]
    Key(#[from] surety_jose::JoseError),
    /// A file could not be read or written.
    #[error("{path}: {message}")]
    File {
        /// Which file.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// Anything else (a malformed URL, an unexpected answer).
    #[error("{0}")]
    Other(String),
}

impl ClientError {
    /// The API error code, if the server answered with one.
    #[must_use]
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Api { body, .. } => Some(&body.error),
            _ => None,
        }
    }

    /// The HTTP status, if the server answered.
    #[must_use]
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    pub(crate) fn file(path: &std::path::Path, message: impl std::fmt::Display) -> Self {
        Self::File {
            path: path.display().to_string(),
            message: message.to_string(),
        }
    }
}
