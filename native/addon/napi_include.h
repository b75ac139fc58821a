// The single place that includes napi.h, and the single place of its
// configuration: Node-API version 9 (package.json "binary".napi_versions),
// C++ exceptions (bindings throw Napi::Error; guarded() catches core errors),
// no deprecated node-addon-api APIs. The build files (CMakeLists.txt,
// binding.gyp) define none of these; a build that does anyway must agree.
#pragma once
#if defined(NAPI_VERSION) && NAPI_VERSION != 9
#error "gnnbatch is built for Node-API version 9 (native/addon/napi_include.h)"
#endif
#ifndef NAPI_VERSION
#define NAPI_VERSION 9
#endif
#ifndef NAPI_CPP_EXCEPTIONS
#define NAPI_CPP_EXCEPTIONS
#endif
#ifndef NODE_ADDON_API_DISABLE_DEPRECATED
#define NODE_ADDON_API_DISABLE_DEPRECATED
#endif
#include <napi.h>
