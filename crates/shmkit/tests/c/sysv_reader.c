#define _XOPEN_SOURCE 700
#include <stdio.h>
#include <stdlib.h>
#include <sys/ipc.h>
#include <sys/shm.h>

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: %s 0xKEY\n", argv[0]); return 2; }
    char *end;
    key_t key = (key_t)strtoul(argv[1], &end, 16);
    if (*end != '\0') { fprintf(stderr, "bad key %s\n", argv[1]); return 2; }
    int shmid = shmget(key, 0, 0);
    if (shmid == -1) { perror("shmget"); return 1; }
    char *str = shmat(shmid, NULL, 0);
    if (str == (char *)-1) { perror("shmat"); return 1; }
    printf("from writer: %s\n", str);
    if (shmdt(str) == -1) { perror("shmdt"); return 1; }
    if (shmctl(shmid, IPC_RMID, NULL) == -1) { perror("shmctl"); return 1; }
    return 0;
}
