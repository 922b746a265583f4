# The shared library, the install rules, the pkg-config and CMake package
# files, the man pages and shell completion, and the Debian packages (cpack).
# Included from CMakeLists.txt after the static library and the cnnviz target.
include(CMakePackageConfigHelpers)

# --- the shared library ---------------------------------------------------------
# Raise with every change that breaks the ABI (0.x: any release may).
set(CNNVIZ_SOVERSION 0)

# It exports what include/cnnviz/*.h declare and nothing else: the engine's
# other cnnviz_* functions (layers, gemm, the Keras reader's pieces) stay
# private, so programs cannot come to depend on them. A version script rather
# than -fvisibility=hidden because the headers then need no export macro.
file(GLOB CNNVIZ_PUBLIC_HEADERS CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/include/cnnviz/*.h)
# a function added to a header must reach the script without a manual reconfigure
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${CNNVIZ_PUBLIC_HEADERS})
set(CNNVIZ_EXPORTS "")
foreach(header ${CNNVIZ_PUBLIC_HEADERS})
  file(READ ${header} text)
  string(REGEX MATCHALL "cnnviz_[A-Za-z0-9_]+[ \t\n]*\\(" calls "${text}")
  foreach(call ${calls})
    string(REGEX REPLACE "[ \t\n]*\\($" "" name "${call}")
    list(APPEND CNNVIZ_EXPORTS ${name})
  endforeach()
endforeach()
list(REMOVE_DUPLICATES CNNVIZ_EXPORTS)
list(SORT CNNVIZ_EXPORTS)
string(REPLACE ";" ";\n    " CNNVIZ_EXPORTS "${CNNVIZ_EXPORTS}")
set(CNNVIZ_VERSION_SCRIPT ${CMAKE_BINARY_DIR}/cnnviz.map)
file(CONFIGURE OUTPUT ${CNNVIZ_VERSION_SCRIPT} CONTENT
  "CNNVIZ_@CNNVIZ_SOVERSION@ {\n  global:\n    @CNNVIZ_EXPORTS@;\n  local:\n    *;\n};\n" @ONLY)

add_library(cnnviz_shared SHARED ${CNNVIZ_LIB_SOURCES})
set_target_properties(cnnviz_shared PROPERTIES OUTPUT_NAME cnnviz EXPORT_NAME cnnviz
  VERSION ${PROJECT_VERSION} SOVERSION ${CNNVIZ_SOVERSION} LINK_DEPENDS ${CNNVIZ_VERSION_SCRIPT})
# The libraries are private: the public headers include none of theirs.
target_link_libraries(cnnviz_shared PRIVATE PkgConfig::CNNVIZ_DEPS OpenMP::OpenMP_C m)
cnnviz_library_settings(cnnviz_shared)
# -fPIC alone lets GCC assume any global function may be replaced at load
# time, so it stops inlining the engine's calls within a file and calls
# through the PLT. Nothing is meant to replace them: the version script makes
# the private calls direct, -Bsymbolic-functions the calls to exported ones.
target_compile_options(cnnviz_shared PRIVATE -fno-semantic-interposition)
target_link_options(cnnviz_shared PRIVATE "LINKER:--version-script=${CNNVIZ_VERSION_SCRIPT}"
  "LINKER:-Bsymbolic-functions" "LINKER:--no-undefined" "LINKER:--as-needed")

# --- man pages and completion -----------------------------------------------------
# Written by the built cnnviz from the option tables that print --help.
set(CNNVIZ_DOCS_DIR ${CMAKE_BINARY_DIR}/docs)
add_custom_command(OUTPUT ${CMAKE_BINARY_DIR}/docs.stamp
  COMMAND bash ${PROJECT_SOURCE_DIR}/cmake/gen-docs.sh $<TARGET_FILE:cnnviz> ${CNNVIZ_DOCS_DIR}
  COMMAND ${CMAKE_COMMAND} -E touch ${CMAKE_BINARY_DIR}/docs.stamp
  DEPENDS cnnviz ${PROJECT_SOURCE_DIR}/cmake/gen-docs.sh
  COMMENT "Writing man pages and shell completion from cnnviz's option tables"
  VERBATIM)
add_custom_target(cnnviz_docs ALL DEPENDS ${CMAKE_BINARY_DIR}/docs.stamp)

# Debian's zsh reads /usr/share/zsh/vendor-completions and, for a local
# install, /usr/local/share/zsh/site-functions.
if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  set(_zsh_dir ${CMAKE_INSTALL_DATADIR}/zsh/vendor-completions)
else()
  set(_zsh_dir ${CMAKE_INSTALL_DATADIR}/zsh/site-functions)
endif()
set(CNNVIZ_ZSH_COMPLETION_DIR ${_zsh_dir} CACHE STRING "where the zsh completion _cnnviz goes, under the prefix")

# --- install ------------------------------------------------------------------------
# Three components, as Debian splits them: "runtime" (the command, the model
# and digits, the manual), "lib" (libcnnviz.so.0) and "dev" (what a C program
# is built with). The command links the static library, so it needs no "lib".
install(TARGETS cnnviz RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT runtime)
install(TARGETS cnnviz_shared EXPORT cnnvizTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT lib NAMELINK_COMPONENT dev)
install(TARGETS cnnviz_lib EXPORT cnnvizTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT dev)
install(FILES ${CNNVIZ_PUBLIC_HEADERS} DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/cnnviz COMPONENT dev)

# share/cnnviz: the model cnnviz uses when none is given (tools/cli.c finds it
# from the program's own path) and the sample digits.
install(FILES ${PROJECT_SOURCE_DIR}/samples/model.h5 DESTINATION ${CMAKE_INSTALL_DATADIR}/cnnviz COMPONENT runtime)
file(GLOB CNNVIZ_SAMPLE_DIGITS CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/samples/digit-*.png)
install(FILES ${CNNVIZ_SAMPLE_DIGITS} DESTINATION ${CMAKE_INSTALL_DATADIR}/cnnviz/digits COMPONENT runtime)

install(DIRECTORY ${CNNVIZ_DOCS_DIR}/man1 DESTINATION ${CMAKE_INSTALL_MANDIR} COMPONENT runtime)
install(FILES ${CNNVIZ_DOCS_DIR}/bash/cnnviz
  DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions COMPONENT runtime)
install(FILES ${CNNVIZ_DOCS_DIR}/zsh/_cnnviz DESTINATION ${CNNVIZ_ZSH_COMPLETION_DIR} COMPONENT runtime)

# cnnviz.pc: its prefix is the one installed to, known only at install time
# (cmake --install --prefix may differ from the configured one). Written under
# a name of its own for each prefix, as two installs may run at once.
string(REPLACE ";" " " CNNVIZ_PC_REQUIRES "${CNNVIZ_PKG_DEPS}")
set(CNNVIZ_PC_PREFIX "@CNNVIZ_PC_PREFIX@")
configure_file(${PROJECT_SOURCE_DIR}/cmake/cnnviz.pc.in ${CMAKE_BINARY_DIR}/cnnviz.pc.in @ONLY)
install(CODE "
  file(READ \"${CMAKE_BINARY_DIR}/cnnviz.pc.in\" pc)
  set(CNNVIZ_PC_PREFIX \"\${CMAKE_INSTALL_PREFIX}\")
  string(CONFIGURE \"\${pc}\" pc @ONLY)
  string(MD5 key \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}\")
  file(WRITE \"${CMAKE_BINARY_DIR}/pc/\${key}/cnnviz.pc\" \"\${pc}\")
  file(INSTALL DESTINATION \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_LIBDIR}/pkgconfig\" TYPE FILE
    FILES \"${CMAKE_BINARY_DIR}/pc/\${key}/cnnviz.pc\")
  " COMPONENT dev)

# The CMake package: relocatable, found from the prefix.
set(CNNVIZ_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/cnnviz)
string(REPLACE ";" " " CNNVIZ_PKG_DEPS_LIST "${CNNVIZ_PKG_DEPS}")
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/cnnvizConfig.cmake.in
  ${CMAKE_BINARY_DIR}/cnnvizConfig.cmake INSTALL_DESTINATION ${CNNVIZ_CMAKE_DIR})
# 0.x: a new minor version may break the API.
write_basic_package_version_file(${CMAKE_BINARY_DIR}/cnnvizConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(EXPORT cnnvizTargets NAMESPACE cnnviz:: DESTINATION ${CNNVIZ_CMAKE_DIR} COMPONENT dev)
install(FILES ${CMAKE_BINARY_DIR}/cnnvizConfig.cmake ${CMAKE_BINARY_DIR}/cnnvizConfigVersion.cmake
  DESTINATION ${CNNVIZ_CMAKE_DIR} COMPONENT dev)

# --- Debian packages: cpack -G DEB in the build folder ----------------------------
# Configure with -DCMAKE_INSTALL_PREFIX=/usr for a package (Debian's layout);
# scripts/check-deb.sh builds them and tries them in a fresh chroot.
set(CPACK_PACKAGE_NAME cnnviz)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
if(NOT CPACK_PACKAGE_CONTACT)
  set(CPACK_PACKAGE_CONTACT "cnnviz developers <cnnviz@invalid>") # -DCPACK_PACKAGE_CONTACT= for a real one
endif()
set(CPACK_STRIP_FILES ON)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL runtime lib dev)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
# Depends: from the ELF files by dpkg-shlibdeps; a shlibs file for libcnnviz.so.0.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(_lib_package libcnnviz${CNNVIZ_SOVERSION})
# Each component's description: its first line is the package's summary.
# (CPack indents it; an empty line separates paragraphs.)
string(CONCAT _about "cnnviz loads Keras CNN models (.h5, .keras) for MNIST-scale images, runs and\n"
           "trains them on the CPU, and draws what they learned: activations, kernels,\n"
           "the input patterns each map responds to most, training curves.")

set(CPACK_DEBIAN_RUNTIME_PACKAGE_NAME cnnviz)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_SECTION science)
set(CPACK_COMPONENT_RUNTIME_DESCRIPTION
  "look inside MNIST-scale Keras CNNs from the command line\n${_about}\n\nThis package holds the cnnviz command, its bundled model and sample digits.")
# The figures are drawn in DejaVu Sans, which the library opens by path.
set(CPACK_DEBIAN_RUNTIME_PACKAGE_DEPENDS "fonts-dejavu-core")

set(CPACK_DEBIAN_LIB_PACKAGE_NAME ${_lib_package})
set(CPACK_DEBIAN_LIB_PACKAGE_SECTION libs)
set(CPACK_COMPONENT_LIB_DESCRIPTION
  "load, run and train MNIST-scale Keras CNNs - shared library\n${_about}\n\nThis package holds the shared library.")
set(CPACK_DEBIAN_LIB_PACKAGE_DEPENDS "fonts-dejavu-core")
# ldconfig by trigger, as Debian policy asks, rather than only from postinst
set(CPACK_DEBIAN_LIB_PACKAGE_CONTROL_EXTRA ${PROJECT_SOURCE_DIR}/cmake/deb/triggers)

set(CPACK_DEBIAN_DEV_PACKAGE_NAME libcnnviz-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
set(CPACK_COMPONENT_DEV_DESCRIPTION
  "load, run and train MNIST-scale Keras CNNs - development files\n${_about}\n\nThis package holds the headers, the static library, cnnviz.pc and the CMake\npackage.")
# cnnviz.pc's Requires.private and the CMake package need the libraries' own
# -dev packages.
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS "${_lib_package} (= ${PROJECT_VERSION}), pkg-config, libhdf5-dev, libcairo2-dev, libpng-dev, libjpeg-dev, libzip-dev, libcjson-dev, zlib1g-dev, libssl-dev")
include(CPack)
