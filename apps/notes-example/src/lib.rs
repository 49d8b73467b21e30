//! An example of embedding Portcullis in your own service.
//!
//! `NotesApi` is an ordinary poem-openapi API with its own resource, notes,
//! private to each user. It protects its operations with Portcullis
//! credentials by taking an [`Authenticated`] parameter, and [`build`] serves
//! it together with Portcullis's own operations through
//! [`Application::build_with`], so both share one OpenAPI document, one
//! Swagger UI (whose **Authorize** button logs in against `/auth/token`),
//! the same error formats, headers and logs, and the same server as the
//! `portcullis` binary: TLS when configured, CORS, the connection limits,
//! the purge of dead sessions and the upkeep of the rate limiters.
//!
//! Run it with `cargo run -p notes-example`; it takes the same settings as
//! the `portcullis` binary (`PORTCULLIS_*` variables, flags, `--config`).

#![allow(
    clippy::disallowed_methods,
    reason = "an embedding example: its notes are its own, not the domain's, and it reads the clock and draws ids directly as a small app would"
)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};
use portcullis::{Application, Settings};
use portcullis_http::error::ApiError;
use portcullis_http::payload::ValidatedJson;
use portcullis_http::security::{ApiScopes, Authenticated, ProfileScope};
use serde::Deserialize;
use time::OffsetDateTime;
use uuid::Uuid;
use validator::Validate;

/// A note.
#[derive(Debug, Clone, Object)]
pub struct Note {
    /// Note id.
    pub id: Uuid,
    /// The text.
    pub text: String,
    /// When it was written.
    pub created_at: OffsetDateTime,
}

/// A new note.
#[derive(Debug, Object, Deserialize, Validate)]
pub struct NewNote {
    /// The text, 1–1000 characters.
    #[oai(validator(min_length = 1, max_length = 1000))]
    #[validate(length(min = 1, max = 1000))]
    pub text: String,
}

#[derive(Tags)]
enum NotesTags {
    /// Your private notes.
    Notes,
}

#[derive(ApiResponse)]
enum NotesResponse {
    /// Your notes, oldest first.
    #[oai(status = 200)]
    Ok(Json<Vec<Note>>),
}

#[derive(ApiResponse)]
enum CreatedResponse {
    /// The note was saved.
    #[oai(status = 201)]
    Created(Json<Note>),
}

/// The example's own API: notes kept in memory, per user.
#[derive(Debug, Clone, Default)]
pub struct NotesApi {
    notes: Arc<Mutex<HashMap<Uuid, Vec<Note>>>>,
}

#[OpenApi(tag = "NotesTags::Notes")]
impl NotesApi {
    /// List your notes
    ///
    /// Requires the `profile` scope: a bearer token, an API key or Basic.
    #[oai(path = "/notes", method = "get", operation_id = "listNotes")]
    async fn list(
        &self,
        #[oai(scope = "ApiScopes::Profile")] auth: Authenticated<ProfileScope>,
    ) -> Result<NotesResponse, ApiError> {
        let owner = auth.principal.user.id.as_uuid();
        let notes = self
            .notes
            .lock()
            .map_err(|_| ApiError::internal())?
            .get(&owner)
            .cloned()
            .unwrap_or_default();
        Ok(NotesResponse::Ok(Json(notes)))
    }

    /// Write a note
    #[oai(path = "/notes", method = "post", operation_id = "createNote")]
    async fn create(
        &self,
        #[oai(scope = "ApiScopes::Profile")] auth: Authenticated<ProfileScope>,
        body: ValidatedJson<NewNote>,
    ) -> Result<CreatedResponse, ApiError> {
        let note = Note {
            id: Uuid::new_v4(),
            text: body.0.text,
            created_at: OffsetDateTime::now_utc(),
        };
        self.notes
            .lock()
            .map_err(|_| ApiError::internal())?
            .entry(auth.principal.user.id.as_uuid())
            .or_default()
            .push(note.clone());
        Ok(CreatedResponse::Created(Json(note)))
    }
}

/// The notes server, bound and ready to run: Portcullis on its data
/// directory plus `NotesApi`, under one document titled "Notes".
pub async fn build(settings: &Settings) -> anyhow::Result<Application> {
    let service = portcullis_http::api_service_with(NotesApi::default(), "Notes", "0.1.0");
    Application::build_with(settings, service).await
}
