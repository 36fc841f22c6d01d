//! OpenAPI schemas for domain types that travel as strings.

use utoipa::openapi::schema::{Object, SchemaType, Type};
use utoipa::openapi::{ObjectBuilder, RefOr, Schema};

fn string_enum(values: impl IntoIterator<Item = &'static str>) -> RefOr<Schema> {
    RefOr::T(Schema::Object(
        ObjectBuilder::new()
            .schema_type(SchemaType::Type(Type::String))
            .enum_values(Some(values.into_iter().collect::<Vec<_>>()))
            .build(),
    ))
}

fn pattern(p: &str, example: &str) -> RefOr<Schema> {
    let object: Object = ObjectBuilder::new()
        .schema_type(SchemaType::Type(Type::String))
        .pattern(Some(p))
        .examples([example])
        .build();
    RefOr::T(Schema::Object(object))
}

pub(crate) fn human_id() -> RefOr<Schema> {
    pattern("^hum_[0-9a-f]{32}$", "hum_01936d3c8f6a7b2c9d0e1f2a3b4c5d6e")
}

pub(crate) fn agent_id() -> RefOr<Schema> {
    pattern("^agt_[0-9a-f]{32}$", "agt_01936d3c8f6a7b2c9d0e1f2a3b4c5d6e")
}

pub(crate) fn federation_grant_id() -> RefOr<Schema> {
    pattern("^fgr_[0-9a-f]{32}$", "fgr_01936d3c8f6a7b2c9d0e1f2a3b4c5d6e")
}

pub(crate) fn event_id() -> RefOr<Schema> {
    pattern("^evt_[0-9a-f]{32}$", "evt_01936d3c8f6a7b2c9d0e1f2a3b4c5d6e")
}

pub(crate) fn role() -> RefOr<Schema> {
    string_enum(surety_core::human::Role::ALL.iter().map(|r| r.as_str()))
}

pub(crate) fn human_status() -> RefOr<Schema> {
    string_enum(
        surety_core::human::HumanStatus::ALL
            .iter()
            .map(|r| r.as_str()),
    )
}

pub(crate) fn agent_status() -> RefOr<Schema> {
    string_enum(
        surety_core::agent::AgentStatus::ALL
            .iter()
            .map(|r| r.as_str()),
    )
}

pub(crate) fn key_status() -> RefOr<Schema> {
    string_enum(surety_core::key::KeyStatus::ALL.iter().map(|r| r.as_str()))
}

pub(crate) fn event_kind() -> RefOr<Schema> {
    string_enum(
        surety_core::audit::EventKind::ALL
            .iter()
            .map(|r| r.as_str()),
    )
}

pub(crate) fn grant_id() -> RefOr<Schema> {
    pattern("^grt_[0-9a-f]{32}$", "grt_01936d3c8f6a7b2c9d0e1f2a3b4c5d6e")
}

pub(crate) fn resource_server_id() -> RefOr<Schema> {
    pattern("^rsv_[0-9a-f]{32}$", "rsv_01936d3c8f6a7b2c9d0e1f2a3b4c5d6e")
}

pub(crate) fn grant_status() -> RefOr<Schema> {
    string_enum(
        surety_core::grant::GrantStatus::ALL
            .iter()
            .map(|r| r.as_str()),
    )
}
