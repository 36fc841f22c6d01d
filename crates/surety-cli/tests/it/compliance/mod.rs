//! One module per spec Surety claims, one normative requirement per test; test names carry
//! the section. The pure checks are also unit-tested in `surety-jose`; these drive a real
//! server over HTTP.

mod ciba;
mod rfc6749;
mod rfc7009;
mod rfc7523;
mod rfc7662;
mod rfc8414;
mod rfc8693;
mod rfc9396;
mod rfc9449;
