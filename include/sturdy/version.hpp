#pragma once
/// @file
/// The one source of sturdy's version; CMake reads it from here.

#define STURDY_VERSION_MAJOR 0
#define STURDY_VERSION_MINOR 1
#define STURDY_VERSION_PATCH 0
#define STURDY_VERSION "0.1.0"
