// The single place that includes napi.h (after its configuration macros).
#pragma once
#ifndef NAPI_VERSION
#define NAPI_VERSION 9
#endif
#ifndef NAPI_CPP_EXCEPTIONS
#define NAPI_CPP_EXCEPTIONS
#endif
#include <napi.h>
