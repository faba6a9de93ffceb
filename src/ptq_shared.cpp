// libptq.so (cmake/PtqInstall.cmake): the modules' code comes from their static libraries.
