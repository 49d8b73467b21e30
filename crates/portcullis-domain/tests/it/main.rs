//! Use-case tests of `AuthService` over in-memory fakes of every port, with a
//! clock the tests move.

mod credentials;
mod fakes;
mod lifecycle;
mod login;
mod normalisation;
mod properties;
mod quotas;
mod register;
mod tokens;
