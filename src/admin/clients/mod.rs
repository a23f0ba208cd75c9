//! Clients (downstream applications): the service that changes them with their audit entry,
//! the JSON API, the list-and-create page and each client's page.

pub mod api;
pub mod form;
pub mod page;
pub mod pages;
pub mod service;
pub mod snippets;
pub mod try_login;
